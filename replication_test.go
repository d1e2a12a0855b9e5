package replog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

func TestAppendsThroughEveryNodeLandOnceInOrderOnEveryReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t") // offset 0: "probe"
		const batches, per = 20, 3
		var wg sync.WaitGroup
		for _, c := range lc.Nodes() {
			wg.Go(func() {
				for b := range batches {
					prefix := fmt.Sprintf("n%d-b%02d", c.ID(), b)
					res, err := c.Append(context.Background(), "t", 0, recs(prefix, per))
					if err != nil {
						t.Errorf("node %d: append %d: %v", c.ID(), b, err)
						return
					}
					if res.LastOffset-res.BaseOffset != per-1 {
						t.Errorf("node %d: append %d got offsets %d..%d for %d records", c.ID(), b, res.BaseOffset, res.LastOffset, per)
					}
				}
			})
		}
		wg.Wait()
		const total = 1 + 3*batches*per
		var first []string
		for _, c := range lc.Nodes() {
			got := values(readN(t, c, "t", 0, 0, total))
			if first == nil {
				first = got
				continue
			}
			if !slices.Equal(got, first) {
				t.Fatalf("node %d's replica differs from node 1's", c.ID())
			}
		}
		// Each value once; each node's batches in the order it sent them,
		// each batch contiguous.
		seen := map[string]bool{}
		last := map[string]string{}
		for i, v := range first[1:] {
			if seen[v] {
				t.Fatalf("value %q appears twice", v)
			}
			seen[v] = true
			node := v[:2]
			if v <= last[node] {
				t.Fatalf("offset %d: %q after %q: a node's appends out of order", i+1, v, last[node])
			}
			last[node] = v
		}
		if len(seen) != total-1 {
			t.Fatalf("%d distinct values, want %d", len(seen), total-1)
		}
		// Node 2's view of the partition agrees.
		p := leaderOf(t, lc.Node(2), "t", 0)
		if p.HighWatermark != total || p.LogStartOffset != 0 {
			t.Errorf("node 2 partition info %+v: want high watermark %d, log start 0", p, total)
		}
	})
}

func TestLeaderStopFailsOverWithoutLosingAcknowledgedRecords(t *testing.T) {
	// The crashed partition leader is not the controller, or is it too
	// (then a new controller is elected first; it counts the dead node's
	// session from when it last heard from it, the election included, and
	// gives it at most half a session more after taking office).
	for _, alsoController := range []bool{false, true} {
		t.Run(fmt.Sprintf("controller crashes too=%v", alsoController), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testLeaderStop(t, alsoController) })
		})
	}
}

func testLeaderStop(t *testing.T, alsoController bool) {
	lc := newLocal(t, 3)
	createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3}) // leaders 1, 2, 3
	requireEngine(t, lc.Node(1), "t")
	ctx := context.Background()
	ctrl := replog.ControllerOf(lc.Node(1))
	var p int32
	for p = 0; p < 3; p++ {
		if leader := leaderOf(t, lc.Node(1), "t", p).Leader; (leader == ctrl) == alsoController {
			break
		}
	}
	acked := []string{}
	if p == 0 {
		acked = append(acked, "probe")
	}
	for i := range 10 {
		r := recs(fmt.Sprintf("before-%d", i), 1)
		if _, err := lc.Node(1).Append(ctx, "t", p, r); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, string(r[0].Value))
	}
	old := leaderOf(t, lc.Node(1), "t", p)
	if err := lc.Stop(old.Leader); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	survivor := otherThan(lc, old.Leader)[0]
	// An append through a survivor rides out the election.
	actx, cancel := context.WithTimeout(ctx, 10*testSession)
	defer cancel()
	r := recs("after", 1)
	if _, err := survivor.Append(actx, "t", p, r); err != nil {
		t.Fatalf("append after leader %d stopped: %v", old.Leader, err)
	}
	acked = append(acked, string(r[0].Value))
	took := time.Since(stopped) // fake time
	t.Logf("node %d (controller: %v) stopped; first append after it took %v", old.Leader, alsoController, took)
	now := leaderOf(t, survivor, "t", p)
	if now.Leader == old.Leader || now.Leader == 0 || now.LeaderEpoch <= old.LeaderEpoch {
		t.Fatalf("after stopping leader %d: partition %+v", old.Leader, now)
	}
	if took > 2*testSession {
		t.Errorf("first append after the leader stopped took %v, want within 2 × SessionTimeout (%v)", took, 2*testSession)
	}
	for _, c := range lc.Nodes() {
		if got := values(readN(t, c, "t", p, 0, len(acked))); !slices.Equal(got, acked) {
			t.Fatalf("node %d holds %q, want every acknowledged record %q", c.ID(), got, acked)
		}
	}
	// The old leader restarts and catches up byte for byte.
	if err := lc.Restart(old.Leader); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := recs(fmt.Sprintf("later-%d", i), 1)
		if _, err := lc.Node(old.Leader).Append(ctx, "t", p, r); err != nil {
			t.Fatalf("append through the restarted node: %v", err)
		}
		acked = append(acked, string(r[0].Value))
	}
	want := readN(t, survivor, "t", p, 0, len(acked))
	got := readN(t, lc.Node(old.Leader), "t", p, 0, len(acked))
	for i := range want {
		if !sameRecord(got[i], want[i]) {
			t.Fatalf("restarted node %d at offset %d: %+v, leader's replica has %+v", old.Leader, i, got[i], want[i])
		}
	}
}

func TestCloseHandsLeadershipOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		old := leaderOf(t, lc.Node(1), "t", 0)
		start := time.Now()
		if err := lc.CloseNode(old.Leader); err != nil {
			t.Fatal(err)
		}
		closed := time.Since(start)
		survivor := otherThan(lc, old.Leader)[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*testSession)
		defer cancel()
		if _, err := survivor.Append(ctx, "t", 0, recs("after", 1)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("Close of leader %d took %v, Close and the next append %v", old.Leader, closed, took)
		now := leaderOf(t, survivor, "t", 0)
		if now.Leader == old.Leader || now.Leader == 0 {
			t.Errorf("after Close of leader %d and an append the partition is %+v", old.Leader, now)
		}
		if took >= testSession {
			t.Fatalf("replication: Close and the next AcksAll append took %v of fake time (session timeout %v): "+
				"the closed node stays in the ISR %v until the lag timeout", took, testSession, now.ISR)
		}
	})
}

func TestAcksLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		ctx := context.Background()
		for _, a := range []replog.Acks{replog.AcksLeader, replog.AcksNone, replog.AcksAll} {
			if _, err := lc.Node(2).Append(ctx, "t", 0, recs(a.String(), 2), replog.WithAcks(a)); err != nil {
				t.Fatalf("append with %v: %v", a, err)
			}
		}
		got := values(readN(t, lc.Node(3), "t", 0, 1, 6))
		want := []string{"AcksLeader-0", "AcksLeader-1", "AcksNone-0", "AcksNone-1", "AcksAll-0", "AcksAll-1"}
		if !slices.Equal(got, want) {
			t.Fatalf("read %q, want %q", got, want)
		}
	})
}

func TestNotEnoughReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, MinInSyncReplicas: 3})
		requireEngine(t, lc.Node(1), "t")
		p := leaderOf(t, lc.Node(1), "t", 0)
		follower := otherThan(lc, p.Leader)[0]
		if err := lc.Stop(follower.ID()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*testSession)
		defer cancel()
		_, err := lc.Node(p.Leader).Append(ctx, "t", 0, recs("x", 1))
		if !errors.Is(err, replog.ErrNotEnoughReplicas) {
			t.Fatalf("AcksAll append with the ISR below MinInSyncReplicas = %v, want ErrNotEnoughReplicas", err)
		}
		if _, err := lc.Node(p.Leader).Append(ctx, "t", 0, recs("y", 1), replog.WithAcks(replog.AcksLeader)); err != nil {
			t.Fatalf("AcksLeader append with a follower down: %v", err)
		}
	})
}

func TestReadWaitsForRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		ctx := context.Background()
		// Nothing at offset 1 yet: without MaxWait the read is empty now;
		// with it, it is empty after MaxWait.
		for _, c := range lc.Nodes() {
			readN(t, c, "t", 0, 0, 1)
			res, err := c.Read(ctx, "t", 0, 1)
			if err != nil || len(res.Records) != 0 || res.HighWatermark != 1 {
				t.Fatalf("node %d: read at the high watermark = %+v, %v; want nothing, HW 1", c.ID(), res, err)
			}
		}
		start := time.Now()
		res, err := lc.Node(3).Read(ctx, "t", 0, 1, replog.MaxWait(time.Second))
		if err != nil || len(res.Records) != 0 || time.Since(start) != time.Second {
			t.Fatalf("read with MaxWait 1s and no data = %+v, %v after %v", res, err, time.Since(start))
		}
		// A waiting reader is woken by the append.
		done := make(chan replog.ReadResult)
		go func() {
			res, err := lc.Node(3).Read(ctx, "t", 0, 1, replog.MaxWait(time.Hour))
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		synctest.Wait()
		if _, err := lc.Node(1).Append(ctx, "t", 0, recs("woke", 3)); err != nil {
			t.Fatal(err)
		}
		res = <-done
		if len(res.Records) == 0 || string(res.Records[0].Value) != "woke-0" {
			t.Fatalf("woken read = %+v", res)
		}
		// MaxRecords and MaxBytes bound a read; offsets past the end fail.
		readN(t, lc.Node(2), "t", 0, 0, 4)
		res, err = lc.Node(2).Read(ctx, "t", 0, 1, replog.MaxRecords(2))
		if err != nil || len(res.Records) != 2 {
			t.Fatalf("read with MaxRecords(2) = %d records, %v", len(res.Records), err)
		}
		res, err = lc.Node(2).Read(ctx, "t", 0, 1, replog.MaxBytes(1))
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("read with MaxBytes(1) = %d records, %v; want at least one", len(res.Records), err)
		}
		res, err = lc.Node(2).Read(ctx, "t", 0, 1000)
		if !errors.Is(err, replog.ErrOffsetOutOfRange) || res.HighWatermark < 4 {
			t.Fatalf("read past the end = %+v, %v; want ErrOffsetOutOfRange with the high watermark", res, err)
		}
		// A ctx that ended before the call ends it, with or without a
		// local replica.
		ended, end := context.WithCancel(ctx)
		end()
		for _, n := range lc.Nodes() {
			if _, err := n.Read(ended, "t", 0, 0); !errors.Is(err, context.Canceled) {
				t.Fatalf("read on node %d with a cancelled ctx = %v", n.ID(), err)
			}
		}
	})
}

func TestAutoCreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) {
			c.AutoCreate = &replog.TopicConfig{Partitions: 2}
		}))
		ctx := context.Background()
		createTopic(t, lc, "probe", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "probe")
		var wg sync.WaitGroup
		for _, c := range lc.Nodes() { // racing creators: one wins, none fails
			wg.Go(func() {
				if _, err := c.Append(ctx, "auto", 1, recs(fmt.Sprint(c.ID()), 1)); err != nil {
					t.Errorf("node %d: append to a new topic with AutoCreate: %v", c.ID(), err)
				}
			})
		}
		wg.Wait()
		ti, err := lc.Node(3).Topic(ctx, "auto")
		if err != nil || len(ti.Partitions) != 2 {
			t.Fatalf("auto-created topic = %+v, %v; want 2 partitions", ti, err)
		}
		if _, err := lc.Node(1).Read(ctx, "never", 0, 0); !errors.Is(err, replog.ErrUnknownTopic) {
			t.Fatalf("Read of an unknown topic with AutoCreate = %v, want ErrUnknownTopic (Read never creates)", err)
		}
	})
}

func TestRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) { c.SegmentSize = 4 << 10 }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, RetentionBytes: 8 << 10})
		requireEngine(t, lc.Node(1), "t")
		ctx := context.Background()
		val := make([]byte, 500)
		for range 100 {
			if _, err := lc.Node(1).Append(ctx, "t", 0, []replog.Record{{Value: val}}); err != nil {
				t.Fatal(err)
			}
		}
		// Retention runs on the replicas' timers, now and then: give it
		// fake time, a bounded amount.
		for _, c := range lc.Nodes() {
			readN(t, c, "t", 0, 100, 1)
		}
		for i := 0; i < 100 && !retained(t, lc, "t"); i++ {
			settle()
		}
		for _, c := range lc.Nodes() {
			p := leaderOf(t, c, "t", 0)
			if p.LogStartOffset <= 0 || p.HighWatermark != 101 {
				t.Errorf("node %d: %+v: want retention to have moved the log start, HW 101", c.ID(), p)
				continue
			}
			if _, err := c.Read(ctx, "t", 0, 0); !errors.Is(err, replog.ErrOffsetOutOfRange) {
				t.Errorf("node %d: read below the log start = %v, want ErrOffsetOutOfRange", c.ID(), err)
			}
			res, err := c.Read(ctx, "t", 0, p.LogStartOffset)
			if err != nil || len(res.Records) == 0 || res.LogStartOffset != p.LogStartOffset {
				t.Errorf("node %d: read at the log start: %d records, %v", c.ID(), len(res.Records), err)
			}
		}
	})
}

func TestCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, c := range lc.Nodes() {
			if _, err := c.Append(ctx, "t", 0, recs("x", 1)); !errors.Is(err, context.Canceled) {
				t.Errorf("node %d: Append with a cancelled ctx = %v, want context.Canceled", c.ID(), err)
			}
			if _, err := c.Read(ctx, "t", 0, 1, replog.MaxWait(time.Second)); !errors.Is(err, context.Canceled) {
				t.Errorf("node %d: waiting Read with a cancelled ctx = %v, want context.Canceled", c.ID(), err)
			}
		}
	})
}

// TestCrashLosesNothingAcknowledged crashes the leader (its unsynced
// bytes go) three times, with each partition log syncing its own file and
// with the logs of each node merged by a Config.SyncGroup.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	t.Run("fdatasync", func(t *testing.T) { testCrashLosesNothingAcknowledged(t, false) })
	t.Run("sync group", func(t *testing.T) { testCrashLosesNothingAcknowledged(t, true) })
}

func testCrashLosesNothingAcknowledged(t *testing.T, group bool) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var groups []*wal.SyncGroup
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) {
			if group {
				// One per node start: a crash fails the group of the
				// node that crashed (its flush fails), not the others'.
				mu.Lock()
				defer mu.Unlock()
				c.SyncGroup = wal.NewSyncGroup()
				groups = append(groups, c.SyncGroup)
			}
		}))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		ctx := context.Background()
		acked := []string{"probe"}
		for round := range 3 {
			// Crash a leader only with every replica in the ISR: with two
			// (the restarted node not yet back), AcksAll rightly fails with
			// ErrNotEnoughReplicas until it is.
			p := waitFullISR(t, lc.Nodes()[0], "t", 0, 3)
			for i := range 5 {
				r := recs(fmt.Sprintf("r%d-%d", round, i), 1)
				if _, err := lc.Nodes()[0].Append(ctx, "t", 0, r); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				acked = append(acked, string(r[0].Value))
			}
			// Power failure of the leader: unsynced bytes go, then restart.
			lc.FS(p.Leader).(*wal.MemFS).Crash(wal.CrashOptions{Torn: true, Seed: uint64(round)})
			if err := lc.Stop(p.Leader); err != nil {
				t.Fatal(err)
			}
			if err := lc.Restart(p.Leader); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range lc.Nodes() {
			got, err := tryReadN(c, "t", 0, len(acked))
			if err != nil {
				t.Fatalf("node %d cannot read all %d acknowledged records after 3 leader crashes: %v", c.ID(), len(acked), err)
			}
			if got := values(got); !slices.Equal(got, acked) {
				t.Fatalf("node %d after crashes holds %q, want %q", c.ID(), got, acked)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		var flushes int64
		for _, g := range groups {
			flushes += g.Stats().Flushes
		}
		if group && flushes == 0 {
			t.Fatal("no sync group flushed: the logs synced their own files")
		}
	})
}

// waitFullISR lets fake time pass (at most 3 × testSession) until c's
// metadata shows n replicas in the partition's ISR, and returns the
// partition.
func waitFullISR(t *testing.T, c *replog.Cluster, topic string, p int32, n int) replog.PartitionInfo {
	t.Helper()
	for range 30 {
		if pi := leaderOf(t, c, topic, p); len(pi.ISR) == n {
			return pi
		}
		time.Sleep(testSession / 10)
		synctest.Wait()
	}
	pi := leaderOf(t, c, topic, p)
	t.Fatalf("%s/%d: ISR %v, want %d replicas after %v", topic, p, pi.ISR, n, 3*testSession)
	return pi
}

// sameRecord compares two records field by field.
func sameRecord(a, b replog.Record) bool {
	return a.Offset == b.Offset && a.Timestamp.Equal(b.Timestamp) && string(a.Key) == string(b.Key) &&
		string(a.Value) == string(b.Value) && slices.EqualFunc(a.Headers, b.Headers, func(x, y replog.Header) bool {
		return x.Key == y.Key && string(x.Value) == string(y.Value)
	})
}

// retained reports whether every running node's replica of t/0 has a log
// start offset above 0.
func retained(t *testing.T, lc *replog.LocalCluster, topic string) bool {
	for _, c := range lc.Nodes() {
		if leaderOf(t, c, topic, 0).LogStartOffset <= 0 {
			return false
		}
	}
	return true
}

func TestNewTopicUsableAtOnceThroughEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "probe", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "probe")
		ctx := context.Background()
		for i := range 10 {
			name := fmt.Sprintf("t%d", i)
			creator := lc.Nodes()[i%3]
			if err := creator.CreateTopic(ctx, name, replog.TopicConfig{Partitions: 3}); err != nil {
				t.Fatal(err)
			}
			// At once, through every node, to every partition.
			var wg sync.WaitGroup
			for _, c := range lc.Nodes() {
				for p := range int32(3) {
					wg.Go(func() {
						if _, err := c.Append(ctx, name, p, recs("x", 1)); err != nil {
							t.Errorf("node %d: append to %s/%d right after node %d created it: %v", c.ID(), name, p, creator.ID(), err)
						}
					})
				}
			}
			wg.Wait()
		}
	})
}

// tryReadN is readN returning its error: records [0, n) of a partition
// through c, within 30 s.
func tryReadN(c *replog.Cluster, topic string, p int32, n int) ([]replog.Record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []replog.Record
	for len(out) < n {
		res, err := c.Read(ctx, topic, p, int64(len(out)), replog.MaxWait(time.Second))
		if err != nil {
			return out, fmt.Errorf("node %d: read at %d (have %d of %d): %w", c.ID(), len(out), len(out), n, err)
		}
		out = append(out, res.Records...)
	}
	return out[:n], nil
}

// A replica that was down while retention on its leader removed records
// it lacks starts its log over at the leader's log start and catches up
// (Kafka's truncate-fully-and-start-at), instead of staying out of the
// ISR for good.
func TestFollowerBehindLogStartCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) { c.SegmentSize = 4 << 10 }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, RetentionBytes: 8 << 10})
		requireEngine(t, lc.Node(1), "t")
		leader := leaderOf(t, lc.Node(1), "t", 0).Leader
		down := replog.NodeID(1)
		if down == leader {
			down = 2
		}
		readN(t, lc.Node(down), "t", 0, 0, 1)
		if err := lc.Stop(down); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		val := make([]byte, 500)
		for i := range 100 {
			if _, err := lc.Node(leader).Append(ctx, "t", 0, []replog.Record{{Value: fmt.Appendf(val[:0:0], "%d-%s", i, val)}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100 && leaderOf(t, lc.Node(leader), "t", 0).LogStartOffset <= 1; i++ {
			settle()
		}
		start := leaderOf(t, lc.Node(leader), "t", 0).LogStartOffset
		if start <= 1 {
			t.Fatalf("retention did not move the leader's log start past the stopped replica's end (start %d)", start)
		}
		if err := lc.Restart(down); err != nil {
			t.Fatal(err)
		}
		caughtUp := func() bool {
			p := leaderOf(t, lc.Node(down), "t", 0)
			return p.HighWatermark == 101 && p.LogStartOffset >= start && slices.Contains(p.ISR, down)
		}
		for i := 0; i < 100 && !caughtUp(); i++ {
			settle()
		}
		if p := leaderOf(t, lc.Node(down), "t", 0); !caughtUp() {
			t.Fatalf("restarted replica on node %d did not catch up: %+v (leader's log start %d)", down, p, start)
		}
		from := leaderOf(t, lc.Node(down), "t", 0).LogStartOffset
		got := readN(t, lc.Node(down), "t", 0, from, int(101-from))
		want := readN(t, lc.Node(leader), "t", 0, from, int(101-from))
		for i := range want {
			if !bytes.Equal(got[i].Value, want[i].Value) {
				t.Fatalf("offset %d: the caught-up replica holds %.10q, the leader %.10q", want[i].Offset, got[i].Value, want[i].Value)
			}
		}
	})
}

// A topic deleted and created again under the same name (with more
// partitions) is usable at once through a node whose metadata still holds
// the old one: Append and Read confirm with the group before they answer
// ErrUnknownPartition or ErrUnknownTopic, and go to the new topic.
func TestRecreatedTopicUsableAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		ctrl := replog.ControllerOf(lc.Node(1))
		var obs, prop replog.NodeID
		for _, id := range []replog.NodeID{1, 2, 3} {
			if id == ctrl {
				continue
			}
			if obs == 0 {
				obs = id
			} else {
				prop = id
			}
		}
		settle()
		for _, id := range []replog.NodeID{1, 2, 3} {
			if id != obs {
				lc.Network().SetLink(id, obs, transport.LinkFaults{Delay: 100 * time.Millisecond})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*testSession)
		defer cancel()
		if err := lc.Node(prop).DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if err := lc.Node(prop).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 4}); err != nil {
			t.Fatal(err)
		}
		t.Logf("controller %d, proposer %d, observer (lagging) %d", ctrl, prop, obs)
		if _, err := lc.Node(obs).Append(ctx, "t", 3, recs("new", 1)); err != nil {
			t.Errorf("Append to partition 3 of the re-created topic through node %d right after CreateTopic returned: %v", obs, err)
		}
		if _, err := lc.Node(obs).Read(ctx, "t", 3, 0); err != nil {
			t.Errorf("Read of partition 3 of the re-created topic through node %d: %v", obs, err)
		}
		if _, err := lc.Node(obs).Append(ctx, "t", 0, recs("new0", 1)); err != nil {
			t.Errorf("Append to partition 0 of the re-created topic through node %d: %v", obs, err)
		}
		lc.Network().Heal()
	})
}

// A topic deleted and created again, with a replica node whose metadata
// lags: once DeleteTopic returned, that node has applied the deletion, so
// an append through it reaches the new topic, never the deleted one (where
// it would be acknowledged and vanish). Replication factor 1, so that the
// lagging node leads its old partition alone.
func TestRecreatedTopicAppendThroughLaggingLeaderKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3, ReplicationFactor: 1})
		ctrl := replog.ControllerOf(lc.Node(1))
		var lag, prop replog.NodeID
		for _, id := range []replog.NodeID{1, 2, 3} {
			switch {
			case id == ctrl:
			case lag == 0:
				lag = id
			default:
				prop = id
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*testSession)
		defer cancel()
		info, err := lc.Node(lag).Topic(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		part := int32(-1)
		for _, p := range info.Partitions {
			if p.Leader == lag {
				part = p.Partition
			}
		}
		if part < 0 {
			t.Fatalf("node %d leads no partition of %+v", lag, info)
		}
		if _, err := lc.Node(lag).Append(ctx, "t", part, recs("old", 1)); err != nil {
			t.Fatal(err)
		}
		settle()
		for _, id := range []replog.NodeID{1, 2, 3} {
			if id != lag {
				lc.Network().SetLink(id, lag, transport.LinkFaults{Delay: 100 * time.Millisecond})
			}
		}
		if err := lc.Node(prop).DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if err := lc.Node(prop).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 3, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
		res, err := lc.Node(lag).Append(ctx, "t", part, recs("new", 1))
		if err != nil {
			t.Fatalf("Append through node %d to the re-created topic: %v", lag, err)
		}
		lc.Network().Heal()
		got, err := lc.Node(prop).Read(ctx, "t", part, 0, replog.MaxWait(testSession))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Records) != 1 || string(got.Records[0].Value) != "new-0" || got.Records[0].Offset != res.BaseOffset {
			t.Fatalf("controller %d, lagging node %d, partition %d: Append through the lagging node returned %+v, "+
				"but the re-created topic holds %d records: %+v", ctrl, lag, part, res, len(got.Records), got.Records)
		}
	})
}
