package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// other returns a running node that is not id.
func (c *tcluster) other(id uint64) uint64 {
	for _, o := range c.ids {
		if o != id && c.nodes[o] != nil {
			return o
		}
	}
	return 0
}

// appendN appends n records "prefix/i" through node id with AcksAll.
func appendN(t *testing.T, ctx context.Context, c *tcluster, id uint64, prefix string, n int) {
	t.Helper()
	for i := range n {
		if _, _, err := c.nodes[id].rep.Append(ctx, "t", 0, rec(fmt.Sprintf("%s/%d", prefix, i)), AcksAll); err != nil {
			t.Fatalf("append %s/%d via node %d: %v", prefix, i, id, err)
		}
	}
}

// checkValues checks that recs hold exactly the wanted values, once each.
func checkValues(t *testing.T, recs []string, want []string) {
	t.Helper()
	got := map[string]int{}
	for _, v := range recs {
		got[v]++
	}
	for _, v := range want {
		if got[v] != 1 {
			t.Errorf("value %q present %d times", v, got[v])
		}
		delete(got, v)
	}
	for v := range got {
		t.Errorf("unexpected value %q", v)
	}
}

func values(c *tcluster) []string {
	var out []string
	for _, r := range c.converged("t", 0) {
		out = append(out, string(r.Value))
	}
	return out
}

func names(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s/%d", prefix, i))
	}
	return out
}

func TestLeaderStopFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		old := c.leader("t", 0)
		via := c.other(old)
		appendN(t, ctx, c, via, "a", 10)
		c.stop(old)
		// Appends ride out the election (session timeout, new leader).
		appendN(t, ctx, c, via, "b", 10)
		if l := c.leader("t", 0); l == old || l == 0 {
			t.Fatalf("leader after stop: %d", l)
		}
		checkValues(t, values(c), append(names("a", 10), names("b", 10)...))
		// The old leader restarts and catches up byte for byte.
		c.start(old)
		appendN(t, ctx, c, old, "c", 5)
		checkValues(t, values(c), append(append(names("a", 10), names("b", 10)...), names("c", 5)...))
	})
}

func TestIsolatedLeaderCannotAckAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		old := c.leader("t", 0)
		appendN(t, ctx, c, old, "a", 5)
		c.net.Isolate(old)
		// The isolated leader writes to its own log, but can never
		// acknowledge with AcksAll: its followers never confirm.
		done := make(chan error, 1)
		go func() {
			actx, acancel := context.WithTimeout(ctx, 20*time.Second)
			defer acancel()
			_, _, err := c.nodes[old].rep.Append(actx, "t", 0, rec("lost"), AcksAll)
			done <- err
		}()
		// The majority elects a leader and takes writes.
		via := c.other(old)
		appendN(t, ctx, c, via, "b", 5)
		if err := <-done; err == nil {
			t.Fatal("isolated leader acknowledged an AcksAll append")
		}
		// AcksLeader on the isolated old leader still writes locally (that
		// record diverges and must be truncated away), but is not
		// acknowledged: the node is out of touch with the controller.
		actx, acancel := context.WithTimeout(ctx, 20*time.Second)
		if _, _, err := c.nodes[old].rep.Append(actx, "t", 0, rec("diverged"), AcksLeader); err == nil {
			t.Error("a leader out of touch with the controller acknowledged an AcksLeader append")
		}
		acancel()
		c.net.Heal()
		appendN(t, ctx, c, via, "c", 5)
		vals := values(c)
		want := append(append(names("a", 5), names("b", 5)...), names("c", 5)...)
		// "lost" and "diverged" may have been retried to the new leader by
		// their producer (it was still inside its ctx): at most once each.
		var rest []string
		for _, v := range vals {
			if v == "lost" || v == "diverged" {
				want = append(want, v)
			}
			rest = append(rest, v)
		}
		checkValues(t, rest, want)
	})
}

func TestRestartedFollowerCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 10)
		c.stop(f)
		appendN(t, ctx, c, l, "b", 30)
		c.start(f)
		if hw, _, ok := c.nodes[f].rep.PartitionState("t", 0); true {
			t.Logf("restarted: hw %d ok %v", hw, ok)
		}
		checkValues(t, values(c), append(names("a", 10), names("b", 30)...)) // converged: byte for byte
	})
}

func TestForwardLossRetriedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		l := c.leader("t", 0)
		f := c.other(l)
		// Lose a third of forwarded appends and of their answers.
		c.net.SetLink(f, l, transport.LinkFaults{Drop: 0.3})
		c.net.SetLink(l, f, transport.LinkFaults{Drop: 0.3})
		appendN(t, ctx, c, f, "a", 30)
		c.net.Heal()
		checkValues(t, values(c), names("a", 30))
	})
}

// A leader whose log's sync stalls (its own, or with Config.Journal the
// node journal's) fails its appends with ErrStorageStalled and gives up
// leading: the partition moves. The append on the stalled leader may
// instead succeed: the leader pushed it to its followers before its own
// write, and if the metadata naming the new leader reaches the producer
// before the stalled round's answer (both follow the same stall at the
// same instant), the producer sends it again to the new leader, which
// holds it. Then it must be there exactly once.
func TestStalledSyncMovesLeadership(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) { testStalledSyncMovesLeadership(t, journal) })
	}
}

func testStalledSyncMovesLeadership(t *testing.T, journal bool) {
	synctest.Test(t, func(t *testing.T) {
		c, stalls := newStallCluster(t, func(id uint64, cfg *Config) { cfg.Journal = journal })
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		old := c.leader("t", 0)
		appendN(t, ctx, c, old, "a", 5)
		stalls[old].Stall()
		_, _, err := c.nodes[old].rep.Append(ctx, "t", 0, rec("stalled"), AcksAll)
		if err != nil && !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("append on a stalled leader: %v, want ErrStorageStalled (or success through the new leader)", err)
		}
		c.waitFor("leadership moves", 30*time.Second, func() bool {
			l := c.leader("t", 0)
			return l != 0 && l != old
		})
		via := c.other(old)
		appendN(t, ctx, c, via, "b", 5)
		stalls[old].Release()
		c.stop(old)
		vals := values(c)
		want := append(names("a", 5), names("b", 5)...)
		if err == nil {
			want = append(want, "stalled") // acknowledged: must be there, once
		} else if slices.Contains(vals, "stalled") {
			want = append(want, "stalled") // pushed before the leader's write: may survive, once
		}
		checkValues(t, vals, want)
	})
}

// Producers on every node append while the leader stops: every
// acknowledged record survives, and no record is written twice although
// the batches in flight at the leader change are retried.
func TestFailoverUnderLoadNoLossNoDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		old := c.leader("t", 0)
		var mu sync.Mutex
		var acked []string
		ackCh := make(chan struct{}, 1<<16)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var once sync.Once
		end := func() { once.Do(func() { close(stop); wg.Wait() }) }
		defer end() // a failure must not leave the producers running
		for _, id := range c.ids {
			if id == old {
				continue
			}
			rep := c.nodes[id].rep
			for w := range 8 { // more than maxSentCalls: calls join, and joined batches are retried
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						select {
						case <-stop:
							return
						default:
						}
						v := fmt.Sprintf("%d/%d/%d", id, w, i)
						actx, acancel := context.WithTimeout(ctx, 30*time.Second)
						_, _, err := rep.Append(actx, "t", 0, rec(v), AcksAll)
						acancel()
						if err == nil {
							mu.Lock()
							acked = append(acked, v)
							mu.Unlock()
							select {
							case ackCh <- struct{}{}:
							case <-stop:
								return
							case <-ctx.Done():
								return
							}
						}
					}
				}()
			}
		}
		waitAcks := func(n int) {
			for range n {
				select {
				case <-ackCh:
				case <-ctx.Done():
					t.Fatal("appends stopped being acknowledged")
				}
			}
		}
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(acked)
		}
		waitAcks(30)
		c.stop(old)
		// 30 acknowledged after the stop (ackCh may hold earlier ones),
		// through the new leader.
		for before := count(); count() < before+30; {
			waitAcks(1)
		}
		end()
		// The first running node's metadata may lag the new leader's by a
		// raft heartbeat; with the producers stopped, time moves on.
		c.waitNewLeader(old)
		got := map[string]int{}
		for _, r := range c.converged("t", 0) {
			got[string(r.Value)]++
		}
		for v, n := range got {
			if n > 1 {
				t.Errorf("%q written %d times", v, n)
			}
		}
		for _, v := range acked {
			if got[v] != 1 {
				t.Errorf("acknowledged %q lost", v)
			}
		}
		if len(acked) < 10 {
			t.Fatalf("only %d appends acknowledged", len(acked))
		}
		batches := 0
		b, _, _ := c.logBytes(c.leader("t", 0), "t", 0)
		for rest := b; len(rest) > 0; batches++ {
			_, next, err := log.SplitBatch(rest)
			if err != nil {
				t.Fatal(err)
			}
			rest = next
		}
		t.Logf("%d acknowledged, %d in the log, in %d batches", len(acked), len(got), batches)
	})
}

// A replica that starts following an epoch its leader already matched it
// in (it restarted, say) has forgotten how far its log agrees with the
// leader's, and takes no high watermark above that: its hello makes the
// leader match it again, although nothing more is appended.
func TestRefollowingReplicaIsMatchedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 5)
		checkValues(t, values(c), names("a", 5))
		r := replicaOf(t, c, f)
		var out answers
		r.mu.Lock()
		r.becomeFollowerLocked(r.mu.leader, r.mu.epoch, &out) // as a restarted replica does
		r.mu.Unlock()
		out.deliver(r.m)
		c.waitFor("follower matched again", 30*time.Second, func() bool { return agreedOf(r) == 5 })
	})
}

// A follower that does not know where its log agrees with its leader's
// (its hello was lost) answers the leader's high-watermark push with a
// mismatch, and so is matched again.
func TestFollowerWithoutAgreementAsksForMatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 5)
		checkValues(t, values(c), names("a", 5))
		// Let the acks of the high watermark land first: one landing
		// after the reset below would tell the leader again that the
		// follower knows it, and the leader would push it no more.
		synctest.Wait()
		r := replicaOf(t, c, f)
		r.mu.Lock()
		r.mu.agreed = -1 // as after becomeFollowerLocked, with the hello lost
		r.mu.Unlock()
		lr := replicaOf(t, c, l)
		lr.mu.Lock()
		lr.mu.followers[f].hw = 0 // the leader pushes its high watermark again
		lr.mu.Unlock()
		c.waitFor("follower matched again", 30*time.Second, func() bool { return agreedOf(r) == 5 })
	})
}

// A follower that crashes right after an acknowledged append holds the
// records but may come back with a lower high watermark (it is
// checkpointed lazily): it must learn the leader's again although nothing
// more is appended.
func TestCrashedFollowerLearnsHighWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 5)
		c.fs[f].(*wal.MemFS).Crash(wal.CrashOptions{})
		c.stopCrashed(f)
		c.start(f)
		checkValues(t, values(c), names("a", 5)) // converged: every high watermark at 5
	})
}

// stopCrashed stops node id after its FS crashed: closing its files fails.
func (c *tcluster) stopCrashed(id uint64) {
	c.t.Helper()
	n := c.nodes[id]
	delete(c.nodes, id)
	_ = n.ep.Close()
	_ = n.rep.Close() // its files went with the crash
	if err := n.meta.Close(); err != nil {
		c.t.Errorf("close meta %d: %v", id, err)
	}
}

// waitReplica waits until node id has opened its replica of t/0.
func (c *tcluster) waitReplica(id uint64) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("node %d's replica of t/0", id), 30*time.Second, func() bool {
		tp, ok := c.nodes[id].meta.State().Topic("t")
		return ok && c.nodes[id].rep.replica(pkey{tp.ID, 0}) != nil
	})
}

// replicaOf is node id's replica of t/0.
func replicaOf(t *testing.T, c *tcluster, id uint64) *replica {
	t.Helper()
	tp, ok := c.nodes[id].meta.State().Topic("t")
	if !ok {
		t.Fatalf("node %d does not know topic t", id)
	}
	r := c.nodes[id].rep.replica(pkey{tp.ID, 0})
	if r == nil {
		t.Fatalf("node %d has no replica of t/0", id)
	}
	return r
}

func agreedOf(r *replica) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.agreed
}

// An append forwarded from a healthy node to a leader whose storage
// stalls is not failed with the leader's ErrStorageStalled: the
// leadership moves to a healthy ISR member and the append goes there,
// within ctx, written once.
func TestForwardedAppendRidesOutLeaderStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, stalls := newStallCluster(t, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		old := c.leader("t", 0)
		via := c.other(old)
		appendN(t, ctx, c, via, "a", 5)
		stalls[old].Stall()
		if _, _, err := c.nodes[via].rep.Append(ctx, "t", 0, rec("fwd"), AcksAll); err != nil {
			t.Fatalf("append through healthy node %d while leader %d stalls: %v", via, old, err)
		}
		if l := c.leader("t", 0); l == old {
			t.Fatalf("the append succeeded with stalled node %d still leading", old)
		}
		stalls[old].Release()
		c.stop(old)
		checkValues(t, values(c), append(names("a", 5), "fwd"))
	})
}
