package replication

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/wal"
)

// A follower's unasked hello to a new leader, were it built from its log
// (LatestEpoch, LogEndOffset) at once, could describe the log before a
// push of the previous epoch its worker is still applying (here: the
// previous leader's match push, which truncates). The follower sends it
// through its worker, after that step; and the new leader does not count
// a follower at a hello's log end before the follower acknowledges a push
// of that match (fstate.confirmed): else the high watermark would pass
// records the follower then truncates. The tests check both: the real
// hello waits, and a stale one delivered by hand does no harm.
//
// A (preferred leader, epoch E) writes r at 3; B holds it, C does not.
// C leads E+1 and tells B to truncate to 3; B's disk stalls in that
// truncation. A leads E+2; B's hello says (E, 4); A counts B at 4; C
// catches up; A's high watermark reaches 4. B's truncation then completes:
// B, in the ISR, holds 3 records while A's high watermark is 4.
func TestStaleHelloDuringTruncation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cuts, _, stalls := staleHelloCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		a, b, cc, part := preferredLeaderStart(t, ctx, c)
		e := part.LeaderEpoch

		// r reaches A and B, not C.
		cuts[a].set(cc)
		if base, _, err := c.nodes[a].rep.Append(ctx, "t", 0, rec("r"), AcksLeader); err != nil || base != 3 {
			t.Fatalf("append r via A: offset %d, %v", base, err)
		}
		c.waitFor("B holds r", 30*time.Second, func() bool {
			_, end, ok := c.logBytes(b, "t", 0)
			return ok && end == 4
		})
		cuts[cc].set(a)

		staleHelloLeaders(t, ctx, c, cuts, stalls[b], a, b, cc, e)
		ra := replicaOf(t, c, a)
		c.waitFor("A matched B and C holds r", 30*time.Second, func() bool {
			ra.mu.Lock()
			defer ra.mu.Unlock()
			fb, fc := ra.mu.followers[b], ra.mu.followers[cc]
			return fb != nil && fb.matched && fc != nil && fc.matched && fc.st.logEnd == 4
		})
		time.Sleep(time.Second) // fake time: let acks and ticks run
		hw4, _, _ := c.nodes[a].rep.PartitionState("t", 0)
		ra.mu.Lock()
		fb := *ra.mu.followers[b]
		ra.mu.Unlock()
		t.Logf("A: hw %d; B as A sees it: matched %v logEnd %d", hw4, fb.matched, fb.st.logEnd)

		// B's answers to A are lost from now on; B's disk comes back.
		cuts[b].set(a)
		stalls[b].Release()
		rb := replicaOf(t, c, b)
		c.waitFor("B's truncation done", 30*time.Second, func() bool { return rb.log.LogEndOffset() == 3 })
		time.Sleep(time.Second)
		hw, _, _ := c.nodes[a].rep.PartitionState("t", 0)
		ra.mu.Lock()
		isr := slices.Clone(ra.mu.part.ISR)
		ra.mu.Unlock()
		if hw <= rb.log.LogEndOffset() || !slices.Contains(isr, b) {
			return // the invariant holds
		}
		t.Errorf("leader A's high watermark %d passes the log end %d of ISR member B (ISR %v)",
			hw, rb.log.LogEndOffset(), isr)
		res, err := c.nodes[a].rep.Read(ctx, "t", 0, 3, ReadOptions{})
		if err == nil && len(res.Records) > 0 {
			t.Logf("a reader on A sees %q at 3 as committed (hw %d)", res.Records[0].Value, res.HighWatermark)
		}

		// A crashes; B (eligible again) is elected from the ISR.
		crashAElectB(t, ctx, c, cuts, a, b)
		if end := rb.log.LogEndOffset(); end < 4 {
			t.Errorf("new leader B's log ends at %d: r at 3, committed under A (hw 4) and served to readers, is lost", end)
		}
	})
}

// The same race would lose a record whose AcksAll Append returned
// success. r is appended AcksAll through A while A and C cannot
// talk at all (so the call's retries cannot reach C while C leads); A,
// leader again, answers the retry from its producer table once its high
// watermark (4, counting B at its stale hello) passes r.
func TestStaleHelloLosesNoAcksAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cuts, fcuts, stalls := staleHelloCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		a, b, cc, part := preferredLeaderStart(t, ctx, c)
		e := part.LeaderEpoch

		// A and C cannot talk; r (AcksAll) reaches A and B, not C.
		cuts[a].set(cc)
		cuts[cc].set(a)
		fcuts[a].set(cc)
		type result struct {
			base int64
			err  error
		}
		done := make(chan result, 1)
		go func() {
			base, _, err := c.nodes[a].rep.Append(ctx, "t", 0, rec("r"), AcksAll)
			done <- result{base, err}
		}()
		c.waitFor("B holds r", 30*time.Second, func() bool {
			_, end, ok := c.logBytes(b, "t", 0)
			return ok && end == 4
		})

		staleHelloLeaders(t, ctx, c, cuts, stalls[b], a, b, cc, e)
		var res result
		c.waitFor("the AcksAll append of r returns", 150*time.Second, func() bool {
			select {
			case res = <-done:
				return true
			default:
				return false
			}
		})
		t.Logf("AcksAll append of r: base %d, err %v", res.base, res.err)

		// B's answers to A are lost from now on (its link to A drops);
		// its disk comes back and it completes C's truncation.
		cuts[b].set(a)
		stalls[b].Release()
		rb := replicaOf(t, c, b)
		c.waitFor("B's truncation done", 30*time.Second, func() bool { return rb.log.LogEndOffset() == 3 })

		ra := replicaOf(t, c, a)
		ra.mu.Lock()
		isr := slices.Clone(ra.mu.part.ISR)
		ra.mu.Unlock()
		if res.err != nil || rb.log.LogEndOffset() > res.base || !slices.Contains(isr, b) {
			return // the invariant holds
		}
		t.Errorf("AcksAll append of r acknowledged at %d, but ISR member B (ISR %v) ends at %d",
			res.base, isr, rb.log.LogEndOffset())
		crashAElectB(t, ctx, c, cuts, a, b)
		if res.err == nil && rb.log.LogEndOffset() <= res.base {
			t.Errorf("AcksAll append of r returned offset %d; the new leader B (an ISR member) ends at %d: an acknowledged write is lost",
				res.base, rb.log.LogEndOffset())
		}
	})
}

// staleHelloLeaders runs the leader changes of the stale-hello scenario,
// after r (at offset 3) reached A and B and not C: B unhealthy (never
// picked) with its disk stalled, C leads epoch e+1 and orders B to
// truncate to 3, which blocks on B's disk; then A leads e+2, B learning
// of it only once A's epoch is begun (B is cut off meanwhile, for less
// than the session timeout), so that its hello is not ignored as early.
// It checks that B's hello waits for the truncation, then hands A the
// stale hello B would otherwise have sent. It returns with the network
// healed and every replication link open.
func staleHelloLeaders(t *testing.T, ctx context.Context, c *tcluster, cuts map[uint64]*dropSender, stallB *wal.StallFS, a, b, cc uint64, e int32) {
	t.Helper()
	if err := c.nodes[b].meta.SetUnhealthy(ctx, true); err != nil {
		t.Fatal(err)
	}
	stallB.Stall()
	if err := c.nodes[a].meta.SetUnhealthy(ctx, true); err != nil {
		t.Fatal(err)
	}
	c.waitFor("C leads E+1", 30*time.Second, func() bool { return leaderReady(c, cc, e+1) })
	rc := replicaOf(t, c, cc)
	c.waitFor("C sent B its match push (truncate to 3)", 30*time.Second, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		f := rc.mu.followers[b]
		return f != nil && f.matched && !f.truncate && f.sentEnd == 3
	})
	c.waitFor("B's worker blocked in C's truncation", 30*time.Second, func() bool {
		return stallB.Waiting() > 0
	})
	if end := replicaOf(t, c, b).log.LogEndOffset(); end != 4 {
		t.Fatalf("B's log end %d before the truncation, want 4", end)
	}
	c.net.Isolate(b)
	if err := c.nodes[a].meta.SetUnhealthy(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[cc].meta.SetUnhealthy(ctx, true); err != nil {
		t.Fatal(err)
	}
	c.waitFor("A leads E+2", 30*time.Second, func() bool { return leaderReady(c, a, e+2) })
	cuts[a].set()
	cuts[cc].set()
	c.net.Heal()

	// B greets A through its worker, which is blocked in C's truncation:
	// no hello reaches A meanwhile (it would describe the log before the
	// truncation). The hello a follower greeting at once would send is
	// delivered by hand instead, so that the leader's own guard is tested
	// too: it must not count B at that log end before B confirms it.
	ra, rb := replicaOf(t, c, a), replicaOf(t, c, b)
	time.Sleep(time.Second) // fake time: let messages and ticks run
	ra.mu.Lock()
	fb := ra.mu.followers[b]
	matched := fb != nil && fb.matched
	ra.mu.Unlock()
	if matched {
		t.Fatal("A matched B on a hello B sent while its worker was still truncating")
	}
	ra.onAck(b, &ackItem{topicID: ra.key.topicID, partition: ra.key.partition, epoch: e + 2,
		status: ackHello, lastEpoch: rb.log.LatestEpoch(), logEnd: rb.log.LogEndOffset()})
}

// staleHelloCluster starts 3 nodes whose file systems can stall and whose
// replication and forwarding messages can be cut per destination, with
// lag and sync deadlines long enough for the scenario to play out.
func staleHelloCluster(t *testing.T) (c *tcluster, cuts, fcuts map[uint64]*dropSender, stalls map[uint64]*wal.StallFS) {
	cuts, fcuts, stalls = map[uint64]*dropSender{}, map[uint64]*dropSender{}, map[uint64]*wal.StallFS{}
	c = newTCluster(t, 3, func(id uint64, cfg *Config) {
		stalls[id] = wal.NewStallFS(cfg.FS)
		cfg.FS = stalls[id]
		cuts[id] = &dropSender{inner: cfg.Replication, cut: map[uint64]bool{}}
		cfg.Replication = cuts[id]
		fcuts[id] = &dropSender{inner: cfg.Forward, cut: map[uint64]bool{}}
		cfg.Forward = fcuts[id]
		cfg.ReplicaLagTime = time.Minute
		cfg.SyncTimeout = 10 * time.Minute
	})
	t.Cleanup(func() {
		for _, s := range stalls {
			s.Release()
		}
	})
	return c, cuts, fcuts, stalls
}

// crashAElectB ends the stale-hello scenario: B is made eligible again
// and hears A again, A crashes, and B is elected from the ISR and leads.
func crashAElectB(t *testing.T, ctx context.Context, c *tcluster, cuts map[uint64]*dropSender, a, b uint64) {
	t.Helper()
	if err := c.nodes[b].meta.SetUnhealthy(ctx, false); err != nil {
		t.Fatal(err)
	}
	cuts[b].set()
	c.stop(a)
	c.waitFor("B leads", 60*time.Second, func() bool {
		p, ok := c.nodes[b].meta.State().Partition("t", 0)
		return ok && p.Leader == b
	})
	rb := replicaOf(t, c, b)
	c.waitFor("B ready", 30*time.Second, func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return rb.mu.role == roleLeader && rb.mu.ready
	})
}
