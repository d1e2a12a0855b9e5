package replog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
)

// producerLog is what one producer goroutine had acknowledged, in order.
type producerLog struct {
	node  replog.NodeID
	name  string
	acked []string
	err   error
	// slowest is the longest Append the producer saw after the Close began
	// (fake time).
	slowest time.Duration
}

// Close of a partition leader while producers append to it through every
// node: the producers on the other nodes ride out the handover without an
// error, those on the closing node get answers for their calls in flight
// (then ErrClosed), and every acknowledged record is on every surviving
// replica, once, in each producer's order. The handover costs no retry
// delay: no append waits for a timer (fake time) while the leadership moves.
func TestCloseOfLeaderUnderLoadLosesNothing(t *testing.T) {
	// The closed leader is the metadata controller too, or it is not.
	for _, alsoController := range []bool{false, true} {
		t.Run(fmt.Sprintf("controller closes too=%v", alsoController), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testCloseUnderLoad(t, alsoController) })
		})
	}
}

func testCloseUnderLoad(t *testing.T, alsoController bool) {
	lc := newLocal(t, 3)
	createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3}) // leaders 1, 2, 3
	ctrl := replog.ControllerOf(lc.Node(1))
	var p int32
	var leader replog.NodeID
	for p = 0; p < 3; p++ {
		if leader = leaderOf(t, lc.Node(1), "t", p).Leader; (leader == ctrl) == alsoController {
			break
		}
	}
	if p == 3 {
		t.Fatalf("no partition whose leader is the controller (%d): %v", ctrl, alsoController)
	}

	const perNode, before, after = 3, 5, 20
	var (
		closing   = make(chan struct{}) // closed when the Close begins
		closeAt   time.Time
		started   sync.WaitGroup // each producer appended `before` batches
		wg        sync.WaitGroup
		logs      []*producerLog
		survivors = otherThan(lc, leader)
	)
	for _, c := range lc.Nodes() {
		for k := range perNode {
			pl := &producerLog{node: c.ID(), name: fmt.Sprintf("n%d-%d", c.ID(), k)}
			logs = append(logs, pl)
			started.Add(1)
			wg.Go(func() { produce(c, p, pl, &started, closing, &closeAt, before, after) })
		}
	}
	started.Wait()
	closeAt = time.Now()
	close(closing)
	if err := lc.CloseNode(leader); err != nil {
		t.Fatalf("close leader %d: %v", leader, err)
	}
	wg.Wait()

	var want []string
	for _, pl := range logs {
		switch {
		case pl.node == leader:
			if pl.err != nil && !errors.Is(pl.err, replog.ErrClosed) {
				t.Errorf("producer %s on the closed node: %v, want ErrClosed once it closed", pl.name, pl.err)
			}
		case pl.err != nil:
			t.Errorf("producer %s on a surviving node: %v (after %d acknowledged)", pl.name, pl.err, len(pl.acked))
		case len(pl.acked) != 2*(before+after):
			t.Errorf("producer %s: %d records acknowledged, want %d", pl.name, len(pl.acked), 2*(before+after))
		}
		// The retry delay of the replication engine is two of its ticks,
		// SessionTimeout/4 here: a handover that makes an append wait for it
		// (or for a resend timer) shows here, in fake time.
		if pl.slowest >= testSession/4 {
			t.Errorf("producer %s: an append during the handover took %v of fake time, want no timer wait", pl.name, pl.slowest)
		}
		want = append(want, pl.acked...)
	}
	var slowest time.Duration
	for _, pl := range logs {
		slowest = max(slowest, pl.slowest)
	}
	t.Logf("leader %d closed; the slowest append during the handover took %v of fake time", leader, slowest)
	now := leaderOf(t, survivors[0], "t", p)
	if now.Leader == leader || now.Leader == 0 {
		t.Fatalf("after Close of leader %d the partition is %+v", leader, now)
	}
	// The new leader's high watermark passed every acknowledged record;
	// a follower may learn it later (readN waits for it).
	now = leaderOf(t, lc.Node(now.Leader), "t", p)
	for _, c := range survivors {
		got := values(readN(t, c, "t", p, 0, int(now.HighWatermark)))
		checkAcked(t, c.ID(), got, want, logs)
	}
}

// produce appends batches of two records to partition p through c:
// `before` of them, then it reports started and goes on until `after` more
// have been attempted since closing was closed. It stops at its first
// error.
func produce(c *replog.Cluster, p int32, pl *producerLog, started *sync.WaitGroup,
	closing <-chan struct{}, closeAt *time.Time, before, after int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*testSession)
	defer cancel()
	afterClose := 0
	for i := 0; afterClose < after; i++ {
		if i == before {
			started.Done()
			<-closing
		}
		r := recs(fmt.Sprintf("%s-%03d", pl.name, i), 2)
		t0 := time.Now()
		_, err := c.Append(ctx, "t", p, r)
		if i >= before {
			from := t0
			if closeAt.After(from) {
				from = *closeAt
			}
			pl.slowest = max(pl.slowest, time.Since(from))
			afterClose++
		}
		if err != nil {
			pl.err = err
			if i < before {
				started.Done()
			}
			return
		}
		pl.acked = append(pl.acked, string(r[0].Value), string(r[1].Value))
	}
}

// checkAcked checks a replica's records (got) against what the producers
// had acknowledged: each acknowledged record once, each producer's in its
// order, the two records of a batch together. Records not acknowledged (a
// call in flight on the closed node when it closed) may be there too.
func checkAcked(t *testing.T, node replog.NodeID, got, want []string, logs []*producerLog) {
	t.Helper()
	at := map[string]int{}
	for i, v := range got {
		if _, dup := at[v]; dup {
			t.Fatalf("node %d: %q twice", node, v)
		}
		at[v] = i
	}
	for _, v := range want {
		if _, ok := at[v]; !ok {
			t.Fatalf("node %d lost acknowledged record %q", node, v)
		}
	}
	for _, pl := range logs {
		offs := make([]int, len(pl.acked))
		for i, v := range pl.acked {
			offs[i] = at[v]
		}
		if !slices.IsSorted(offs) {
			t.Fatalf("node %d: producer %s's records out of order", node, pl.name)
		}
		for i := 0; i+1 < len(offs); i += 2 {
			if offs[i+1] != offs[i]+1 {
				t.Fatalf("node %d: producer %s's batch %q split", node, pl.name, pl.acked[i])
			}
		}
	}
}

// Close of the controller hands its role over: right after Close returns,
// a metadata write through another node goes through without waiting for
// an election (fake time: an election timeout is ten metadata ticks,
// SessionTimeout/4 here).
func TestCloseOfControllerHandsItOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3})
		ctrl := replog.ControllerOf(lc.Node(1))
		if err := lc.CloseNode(ctrl); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		survivor := otherThan(lc, ctrl)[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*testSession)
		defer cancel()
		if err := survivor.CreateTopic(ctx, "u", replog.TopicConfig{Partitions: 1, ReplicationFactor: 2}); err != nil {
			t.Fatalf("CreateTopic after the controller closed: %v", err)
		}
		took := time.Since(start)
		if now := replog.ControllerOf(survivor); now == ctrl || now == 0 {
			t.Fatalf("controller %d closed; node %d takes %d for the controller", ctrl, survivor.ID(), now)
		}
		if took >= testSession/4 {
			t.Errorf("CreateTopic right after Close of controller %d took %v of fake time: it waited for an election", ctrl, took)
		}
	})
}

// A replica closed with a controlled shutdown stays in the ISR while it
// is away, left out of the high watermark: the records acknowledged
// meanwhile are not on it. When the other members then restart (their
// registrations take them out of every ISR they need not stay in), the
// closed replica must not become the ISR's only member and lead without
// those records once back. Two shapes: RF 2 with MinInSyncReplicas 1 (the
// leader restarts once), and RF 3 with the default MinInSyncReplicas 2
// (both other replicas restart).
func TestClosedReplicaNeverLeadsWithoutAckedRecords(t *testing.T) {
	for _, tc := range []struct {
		name          string
		nodes         int
		cfg           replog.TopicConfig
		restartsFirst int // replicas other than the closed one restarted, leader last
	}{
		{"rf2", 3, replog.TopicConfig{Partitions: 3, ReplicationFactor: 2, MinInSyncReplicas: 1}, 1},
		{"rf3", 5, replog.TopicConfig{Partitions: 5, ReplicationFactor: 3}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lc := newLocal(t, tc.nodes)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				createTopic(t, lc, "t", tc.cfg)
				// A partition the controller holds no replica of: its
				// restarts must not move the controller.
				ctrl := replog.ControllerOf(lc.Node(1))
				ti, err := lc.Node(ctrl).Topic(ctx, "t")
				if err != nil {
					t.Fatal(err)
				}
				var part replog.PartitionInfo
				for _, p := range ti.Partitions {
					if !slices.Contains(p.Replicas, ctrl) {
						part = p
					}
				}
				var closed replog.NodeID
				var others []replog.NodeID
				for _, id := range part.Replicas {
					switch {
					case id == part.Leader:
					case closed == 0:
						closed = id
					default:
						others = append(others, id)
					}
				}
				others = append(others, part.Leader)
				if _, err := lc.Node(part.Leader).Append(ctx, "t", part.Partition, recs("before", 1)); err != nil {
					t.Fatal(err)
				}
				if err := lc.CloseNode(closed); err != nil {
					t.Fatal(err)
				}
				if _, err := lc.Node(part.Leader).Append(ctx, "t", part.Partition, recs("acked", 2)); err != nil {
					t.Fatal(err)
				}
				for _, id := range others[:tc.restartsFirst] {
					if err := lc.Stop(id); err != nil {
						t.Fatal(err)
					}
					if err := lc.Restart(id); err != nil {
						t.Fatal(err)
					}
				}
				if err := lc.Restart(closed); err != nil {
					t.Fatal(err)
				}
				settle()
				p := leaderOf(t, lc.Node(ctrl), "t", part.Partition)
				if p.Leader == 0 || p.Leader == closed {
					t.Fatalf("after the restarts: %+v; replica %d was closed while records were acknowledged", p, closed)
				}
				got := values(readN(t, lc.Node(p.Leader), "t", part.Partition, 0, 3))
				if want := []string{"before-0", "acked-0", "acked-1"}; !slices.Equal(got, want) {
					t.Fatalf("read %v, want %v", got, want)
				}
			})
		})
	}
}
