package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
)

func TestBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, func(id uint64, cfg *Config) { cfg.MaxBatchBytes = 1 << 10 })
		c.createTopic("t", meta.TopicConfig{Partitions: 2, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m := c.nodes[1].rep
		for _, tc := range []struct {
			name string
			err  error
			call func() error
		}{
			{"empty batch", ErrInvalidArgument, func() error { _, _, err := m.Append(ctx, "t", 0, nil, AcksAll); return err }},
			{"bad acks", ErrInvalidArgument, func() error { _, _, err := m.Append(ctx, "t", 0, rec("x"), 7); return err }},
			{"too large", ErrRecordTooLarge, func() error {
				_, _, err := m.Append(ctx, "t", 0, []log.Record{{Value: make([]byte, 2<<10)}}, AcksAll)
				return err
			}},
			{"unknown topic", meta.ErrUnknownTopic, func() error { _, _, err := m.Append(ctx, "nope", 0, rec("x"), AcksAll); return err }},
			{"unknown partition", meta.ErrUnknownPartition, func() error { _, _, err := m.Append(ctx, "t", 2, rec("x"), AcksAll); return err }},
			{"negative partition", meta.ErrUnknownPartition, func() error { _, err := m.Read(ctx, "t", -1, 0, ReadOptions{}); return err }},
			{"offset out of range", log.ErrOffsetOutOfRange, func() error { _, err := m.Read(ctx, "t", 0, 5, ReadOptions{}); return err }},
			{"cancelled ctx", context.Canceled, func() error {
				cctx, ccancel := context.WithCancel(ctx)
				ccancel()
				_, err := m.Read(cctx, "t", 0, 0, ReadOptions{MaxWait: time.Second})
				return err
			}},
		} {
			if err := tc.call(); !errors.Is(err, tc.err) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			}
		}
		// MaxWait waits for a record and returns what arrives.
		got := make(chan ReadResult, 1)
		go func() {
			res, err := c.nodes[2].rep.Read(ctx, "t", 0, 0, ReadOptions{MaxWait: 10 * time.Second})
			if err != nil {
				t.Errorf("waiting read: %v", err)
			}
			got <- res
		}()
		if _, _, err := m.Append(ctx, "t", 0, rec("late"), AcksAll); err != nil {
			t.Fatal(err)
		}
		if res := <-got; len(res.Records) != 1 || string(res.Records[0].Value) != "late" {
			t.Fatalf("waiting read got %+v", res)
		}
		// An empty wait ends at MaxWait with nothing.
		res, err := m.Read(ctx, "t", 1, 0, ReadOptions{MaxWait: time.Second})
		if err != nil || len(res.Records) != 0 {
			t.Fatalf("read of an empty partition: %+v, %v", res, err)
		}
		c.stop(1)
		if _, _, err := m.Append(ctx, "t", 0, rec("x"), AcksAll); !errors.Is(err, ErrClosed) {
			t.Fatalf("append after close: %v", err)
		}
		if _, err := m.Read(ctx, "t", 0, 0, ReadOptions{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	})
}

func TestDeleteTopicRemovesData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		old := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		appendN(t, ctx, c, 1, "a", 5)
		values(c)
		c.deleteTopic(ctx, "t", old.ID)
		for _, id := range c.ids {
			if _, _, err := c.nodes[id].rep.Append(ctx, "t", 0, rec("x"), AcksAll); !errors.Is(err, meta.ErrUnknownTopic) {
				t.Fatalf("append to a deleted topic: %v", err)
			}
		}
		// The same name again is a new, empty topic.
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		appendN(t, ctx, c, 2, "b", 3)
		checkValues(t, values(c), names("b", 3))
	})
}

func TestShutdownMovesLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 3, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		appendN(t, ctx, c, 1, "a", 5)
		l := c.leader("t", 0)
		start := time.Now()
		if err := c.nodes[l].rep.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		// Leadership moved by the controller's hand-over, not a session
		// timeout.
		if d := time.Since(start); d >= 2*time.Second {
			t.Fatalf("shutdown took %v", d)
		}
		for p := range int32(3) {
			if got := c.leader("t", p); got == l {
				t.Fatalf("partition %d still led by the drained node", p)
			}
		}
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksAll); !errors.Is(err, ErrClosed) {
			t.Fatalf("append after shutdown: %v", err)
		}
		c.stop(l)
		appendN(t, ctx, c, c.other(l), "b", 5)
		checkValues(t, values(c), append(names("a", 5), names("b", 5)...))
	})
}

func TestNotEnoughReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		l, _ := stopFollowerOfFullISR(t, ctx, c)
		// The stopped follower leaves the ISR (fenced, or shrunk by the
		// leader); AcksAll then fails, AcksLeader still works.
		var err error
		c.waitFor("AcksAll refused", 30*time.Second, func() bool {
			actx, acancel := context.WithTimeout(ctx, time.Second)
			defer acancel()
			_, _, err = c.nodes[l].rep.Append(actx, "t", 0, rec("x"), AcksAll)
			return errors.Is(err, ErrNotEnoughReplicas)
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a short ISR for longer than the append's ctx: err = %v, want ctx's error too", err)
		}
		// A shortage that lasts gives the error once ReplicaLagTime has
		// passed since the leader first answered it, within a longer ctx.
		m := c.nodes[l].rep
		_, _, err = m.Append(ctx, "t", 0, rec("z"), AcksAll)
		if !errors.Is(err, ErrNotEnoughReplicas) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("AcksAll with the ISR short for good: err = %v, want ErrNotEnoughReplicas", err)
		}
		p := producerOf(c, l)
		p.mu.Lock()
		waited := time.Duration(m.mono() - p.mu.shortAt)
		p.mu.Unlock()
		if waited < DefaultReplicaLagTime || waited > DefaultReplicaLagTime+time.Second {
			t.Fatalf("gave up %v after the first short answer, want ReplicaLagTime (%v)", waited, DefaultReplicaLagTime)
		}
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("y"), AcksLeader); err != nil {
			t.Fatalf("AcksLeader with a short ISR: %v", err)
		}
		if !strings.Contains(err.Error(), "t/0") {
			t.Errorf("error lacks the partition: %v", err)
		}
	})
}

// With the ISR short for good, many concurrent AcksAll appends through one
// node all fail within about ReplicaLagTime of the first answer: the wait
// is the partition's, not each call's (calls beyond the window of
// maxInFlight do not start a wait of their own once sent).
func TestShortISRWaitIsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l, _ := stopFollowerOfFullISR(t, ctx, c)
		c.waitStoppedOutOfISR(l)
		const n = 4 * maxInFlight
		start := time.Now()
		done := make(chan time.Duration, n)
		for i := range n {
			go func() {
				_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec(fmt.Sprint("z", i)), AcksAll)
				if !errors.Is(err, ErrNotEnoughReplicas) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("append %d: err = %v, want ErrNotEnoughReplicas", i, err)
				}
				done <- time.Since(start)
			}()
		}
		var worst time.Duration
		for range n {
			worst = max(worst, <-done)
		}
		if worst > DefaultReplicaLagTime+time.Second {
			t.Fatalf("the last of %d appends failed after %v, want about ReplicaLagTime (%v)", n, worst, DefaultReplicaLagTime)
		}
	})
}

// An AcksAll append that finds the ISR short for a moment (a follower
// restarting, catching up and rejoining) waits it out within its ctx and
// succeeds, once: after a leader change, followers that must catch up
// leave such a moment, and Append rides out transient states. Two cases:
// the ISR shrank before the append reached the leader (refused before it
// was written), or while it waited for the high watermark (written, then
// answered "not enough": its retry is deduplicated).
func TestAppendRidesOutShortISR(t *testing.T) {
	for _, written := range []bool{false, true} {
		t.Run(fmt.Sprintf("written=%v", written), func(t *testing.T) { testAppendRidesOutShortISR(t, written) })
	}
}

func testAppendRidesOutShortISR(t *testing.T, written bool) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, func(id uint64, cfg *Config) { cfg.ReplicaLagTime = 10 * time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		l, f := stopFollowerOfFullISR(t, ctx, c)
		if !written {
			c.waitStoppedOutOfISR(l)
		}
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("b"), AcksAll)
			errc <- err
		}()
		c.waitFor("the append answered: not enough in-sync replicas", 60*time.Second, func() bool {
			p := producerOf(c, l)
			if p == nil {
				return false
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.mu.calls) == 1 && p.mu.short
		})
		c.start(f)
		if err := <-errc; err != nil {
			t.Fatalf("AcksAll append while a follower rejoins: %v", err)
		}
		checkValues(t, values(c), append(names("a", 3), "b"))
	})
}

// stopFollowerOfFullISR creates topic t (one partition, RF 3, minimum ISR
// 3: every replica), appends a/0..a/2 through its leader and stops a
// follower, so that AcksAll appends find the ISR short once it leaves. It
// returns the leader and the stopped follower.
func stopFollowerOfFullISR(t *testing.T, ctx context.Context, c *tcluster) (l, f uint64) {
	t.Helper()
	c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 3})
	l = c.leader("t", 0)
	f = c.other(l)
	appendN(t, ctx, c, l, "a", 3)
	c.stop(f)
	return l, f
}

// waitStoppedOutOfISR waits until leader l's metadata shows t/0's ISR
// without the follower stopFollowerOfFullISR stopped.
func (c *tcluster) waitStoppedOutOfISR(l uint64) {
	c.t.Helper()
	c.waitFor("the stopped follower out of the ISR", 60*time.Second, func() bool {
		p, _ := c.nodes[l].meta.State().Partition("t", 0)
		return len(p.ISR) == 2
	})
}

// producerOf is node id's producer of t/0, nil if it has none.
func producerOf(c *tcluster, id uint64) *producer {
	m := c.nodes[id].rep
	tp, ok := m.cfg.Meta.State().Topic("t")
	if !ok {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.producers[pkey{tp.ID, 0}]
}

// A node holding no replica of a partition forwards its appends and reads
// to the leader, MaxWait included.
func TestReadForwardedByNodeWithoutReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		l := c.leader("t", 0)
		o := c.other(l)
		if _, _, ok := c.nodes[o].rep.PartitionState("t", 0); ok {
			t.Fatalf("node %d holds a replica of an RF 1 partition led by %d", o, l)
		}
		for i := range 3 {
			if _, _, err := c.nodes[o].rep.Append(ctx, "t", 0, rec(fmt.Sprint(i)), AcksAll); err != nil {
				t.Fatal(err)
			}
		}
		res, err := c.nodes[o].rep.Read(ctx, "t", 0, 1, ReadOptions{MaxRecords: 1})
		if err != nil || len(res.Records) != 1 || string(res.Records[0].Value) != "1" || res.Records[0].Offset != 1 || res.HighWatermark != 3 {
			t.Fatalf("forwarded read: %+v, %v", res, err)
		}
		if _, err := c.nodes[o].rep.Read(ctx, "t", 0, 4, ReadOptions{}); !errors.Is(err, log.ErrOffsetOutOfRange) {
			t.Fatalf("forwarded read past the end: %v", err)
		}
		got := make(chan ReadResult, 1)
		go func() {
			res, err := c.nodes[o].rep.Read(ctx, "t", 0, 3, ReadOptions{MaxWait: 5 * time.Second})
			if err != nil {
				t.Errorf("waiting forwarded read: %v", err)
			}
			got <- res
		}()
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("late"), AcksAll); err != nil {
			t.Fatal(err)
		}
		if res := <-got; len(res.Records) != 1 || string(res.Records[0].Value) != "late" {
			t.Fatalf("waiting forwarded read: %+v", res)
		}
	})
}

// Shutdown returns only once the new leaders took over: Drain is applied
// on the draining node first, and a draining metadata leader whose
// messages are slow must not stop before the new partition leaders know
// they lead (appends would wait for a new metadata leader meanwhile).
func TestShutdownWaitsForNewLeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 3, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		appendN(t, ctx, c, 1, "a", 5)
		ctl := c.nodes[1].meta.Controller()
		if ctl == 0 || c.nodes[ctl] == nil {
			t.Fatalf("no controller known: %d", ctl)
		}
		for _, id := range c.ids {
			if id != ctl {
				c.net.SetLink(ctl, id, transport.LinkFaults{Delay: 200 * time.Millisecond})
			}
		}
		if err := c.nodes[ctl].rep.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		st := c.nodes[ctl].meta.State()
		for p := range int32(3) {
			part, _ := st.Partition("t", p)
			if part.Leader == ctl || part.Leader == 0 {
				t.Fatalf("partition %d: %+v after Shutdown of node %d", p, part, ctl)
			}
			if got, ok := c.nodes[part.Leader].meta.State().Partition("t", p); !ok || got.LeaderEpoch < part.LeaderEpoch {
				t.Errorf("partition %d: Shutdown of node %d returned before leader %d learned epoch %d (it knows %+v)",
					p, ctl, part.Leader, part.LeaderEpoch, got)
			}
		}
	})
}

// An EventResync carries the State of a snapshot installed before later
// changes; delivered after an Append read a newer State, it must not take
// a topic created since for deleted: its producer would fail calls that
// are written, its replica would be removed.
func TestStaleResyncDeletesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		old := c.nodes[1].meta.State()
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		appendN(t, ctx, c, 1, "a", 3)
		if _, ok := old.Topic("t"); ok {
			t.Fatal("the State read before CreateTopic holds the topic")
		}
		c.nodes[1].rep.reconcileAll(old) // as a resync delivered late would
		appendN(t, ctx, c, 1, "b", 3)
		checkValues(t, values(c), append(names("a", 3), names("b", 3)...))
	})
}

// A forwarded read whose answer lands just as its resend timer fires
// takes the answer or retries; the two must not write the call's answer
// unsynchronised (they did: race reports in the chaos soak). The leader
// answers an empty read after MaxWait, delayed by exactly the forwarder's
// resend margin, so both happen at one instant of the bubble's clock;
// then the delay goes, so that a retry is answered in time. Run it with
// -race.
func TestForwardedReadAnswerAtResendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l := c.leader("t", 0)
		o := c.other(l)
		if _, _, err := c.nodes[o].rep.Append(ctx, "t", 0, rec("a"), AcksAll); err != nil {
			t.Fatal(err)
		}
		const maxWait = 100 * time.Millisecond
		margin := time.Duration(c.nodes[o].rep.resendAfter(1))
		for range 10 {
			c.net.SetLink(l, o, transport.LinkFaults{Delay: margin})
			type result struct {
				res ReadResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := c.nodes[o].rep.Read(ctx, "t", 0, 1, ReadOptions{MaxWait: maxWait})
				done <- result{res, err}
			}()
			time.Sleep(maxWait + margin + time.Millisecond) // the bubble's clock: past the coincidence
			c.net.Heal()
			r := <-done
			if r.err != nil || len(r.res.Records) != 0 || r.res.HighWatermark != 1 {
				t.Fatalf("read at the end through node %d: %+v, %v", o, r.res, r.err)
			}
		}
	})
}

// An Append waiting for its acknowledgement when its node closes returns
// ErrClosed at once, not when its ctx ends: Close ends every call.
func TestCloseEndsWaitingAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		appendN(t, ctx, c, 1, "a", 1)
		l := c.leader("t", 0)
		for _, o := range c.ids {
			if o != l {
				c.net.SetLink(l, o, transport.LinkFaults{Drop: 1}) // no push arrives: nothing commits
			}
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksAll)
				errs <- err
			}()
		}
		synctest.Wait() // every Append waits for its acknowledgement
		start := time.Now()
		c.stop(l)
		for range 4 {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("append waiting at close: %v, want ErrClosed", err)
			}
		}
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("appends ended %v after Close", d)
		}
	})
}

// Close ends waiting Appends before it waits for the node's IO: with the
// leader's disk stalled, its Appends return ErrClosed while Close is
// still waiting for the stalled sync.
func TestCloseEndsAppendsBeforeStalledIO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, stalls := newStallCluster(t, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		appendN(t, ctx, c, 1, "a", 1)
		l := c.leader("t", 0)
		stalls[l].Stall()
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksAll)
				errs <- err
			}()
		}
		synctest.Wait() // the round's sync is stalled
		if stalls[l].Waiting() == 0 {
			t.Fatal("no sync is stalled")
		}
		closed := make(chan struct{})
		go func() {
			c.stop(l)
			close(closed)
		}()
		for range 4 {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("append waiting at close: %v, want ErrClosed", err)
			}
		}
		select {
		case <-closed:
			t.Fatal("the appends ended only once Close had waited for the stalled IO")
		default:
		}
		stalls[l].Release()
		<-closed
	})
}

// A replica that lags the leader (here cut off from it) does not answer
// ErrOffsetOutOfRange for an offset the leader committed: a consumer
// told so would move its offset and skip or re-read data. The read goes
// to the leader.
func TestLaggingReplicaReadsCommittedOffsetFromLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cuts := newCutCluster(t, 500*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l, f := c.topicT()
		cuts[l].set(f) // f gets nothing more
		appendN(t, ctx, c, l, "a", 3)
		if end := replicaOf(t, c, f).log.LogEndOffset(); end >= 2 {
			t.Fatalf("follower's log ends at %d: it does not lag", end)
		}
		res, err := c.nodes[f].rep.Read(ctx, "t", 0, 2, ReadOptions{MaxWait: 5 * time.Second})
		if err != nil || len(res.Records) == 0 || string(res.Records[0].Value) != "a/2" || res.Records[0].Offset != 2 {
			t.Fatalf("read at committed offset 2 via lagging node %d: %+v, %v", f, res, err)
		}
		// Past the leader's log end it is out of range.
		if _, err := c.nodes[f].rep.Read(ctx, "t", 0, 100, ReadOptions{}); !errors.Is(err, log.ErrOffsetOutOfRange) {
			t.Fatalf("read at 100 via node %d: %v, want ErrOffsetOutOfRange", f, err)
		}
	})
}

// A read that looked its topic up before the topic was deleted and
// created again under the same name fails with meta.ErrUnknownTopic at
// once, on the new topic's leader and elsewhere (so that Read goes on to
// the new topic), instead of waiting for its ctx: the name now names
// another topic, which the old ID's read must not wait for nor forward to.
func TestReadOfRecreatedTopicIDEndsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		old := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c.deleteTopic(ctx, "t", old.ID)
		nt := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		l := c.leader("t", 0)
		if nt.ID == old.ID || l == 0 {
			t.Fatal("no new topic")
		}
		for _, id := range []uint64{l, l%3 + 1} {
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := c.nodes[id].rep.readTopic(rctx, old, 0, 0, ReadOptions{MaxBytes: 1 << 20})
			rcancel()
			if !errors.Is(err, meta.ErrUnknownTopic) {
				t.Errorf("read of the deleted topic's ID on node %d (new leader %d): %v, want ErrUnknownTopic", id, l, err)
			}
		}
	})
}
