package replication

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
)

// dropSender is a replication Sender that loses every message to the
// nodes it is told to cut off (a link that drops only this subsystem's
// traffic: the metadata's heartbeats still flow).
type dropSender struct {
	inner Sender
	mu    sync.Mutex
	cut   map[uint64]bool
}

func (d *dropSender) Send(to uint64, msg []byte) error {
	d.mu.Lock()
	cut := d.cut[to]
	d.mu.Unlock()
	if cut {
		return nil // lost on the way
	}
	return d.inner.Send(to, msg)
}

func (d *dropSender) set(cut ...uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = map[uint64]bool{}
	for _, id := range cut {
		d.cut[id] = true
	}
}

// A leader that lacks an epoch its follower has must not take the
// follower's log as agreeing up to the end of the epoch before it (Kafka's
// KIP-279). The scenario, as chaos seed 149 met it: leader L of epoch E
// writes x at offset 3 that its followers never get; leadership moves to
// Q (E+1), which writes b at 3 and replicates it to R, while L, still in
// the ISR, never hears from Q; then L, the preferred leader, leads again
// (E+2). Q and R answer with latest epoch E+1, which L's log lacks: L's
// end of the epoch before it (E) is 4, their log end is 4, so without the
// follower's own end of E (3) they kept b at 3 below L's high watermark,
// under x in L's log: replicas diverged, and a record was acknowledged
// that two of three replicas did not hold.
func TestFollowerWithEpochUnknownToLeaderTruncates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Nobody is shrunk out of the ISR while the scenario runs.
		c, senders := newCutCluster(t, time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l, q, r, part := preferredLeaderStart(t, ctx, c)

		// x reaches L's log only.
		senders[l].set(q, r)
		if base, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil || base != 3 {
			t.Fatalf("append x via the leader: offset %d, %v", base, err)
		}
		epochE := part.LeaderEpoch

		// Leadership moves to Q (E+1); L stays in the ISR but never hears
		// from Q (its answers are lost), so Q never matches it.
		if err := c.nodes[l].meta.SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		c.waitFor("Q leads epoch E+1", 30*time.Second, func() bool { return leaderReady(c, q, epochE+1) })
		if base, _, err := c.nodes[q].rep.Append(ctx, "t", 0, rec("b"), AcksLeader); err != nil || base != 3 {
			t.Fatalf("append b via Q: offset %d, %v", base, err)
		}
		c.waitFor("R holds b", 30*time.Second, func() bool {
			_, end, ok := c.logBytes(r, "t", 0)
			return ok && end == 4
		})

		// L leads again (E+2), its log [a a a x] in epoch E only.
		if err := c.nodes[l].meta.SetUnhealthy(ctx, false); err != nil {
			t.Fatal(err)
		}
		c.waitFor("L leads epoch E+2", 30*time.Second, func() bool { return leaderReady(c, l, epochE+2) })
		if got := replicaOf(t, c, l).log.Epochs(); len(got) != 2 || got[0].Epoch != epochE || got[1].Epoch != epochE+2 {
			t.Fatalf("L's epochs %v, want %d then %d", got, epochE, epochE+2)
		}
		senders[l].set()
		if base, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("y"), AcksAll); err != nil || base != 4 {
			t.Fatalf("append y via L: offset %d, %v", base, err)
		}
		// Every replica holds y, committed: their logs must be L's.
		c.waitFor("every replica holds y below its high watermark", 60*time.Second, func() bool {
			for _, id := range c.ids {
				hw, _, ok := c.nodes[id].rep.PartitionState("t", 0)
				if !ok || hw < 5 {
					return false
				}
			}
			return true
		})
		ref, _, _ := c.logBytes(l, "t", 0)
		for _, id := range []uint64{q, r} {
			if b, _, _ := c.logBytes(id, "t", 0); !bytes.Equal(b, ref) {
				t.Errorf("node %d's log %q diverges from the leader's %q below the high watermark",
					id, logValues(t, b), logValues(t, ref))
			}
		}
		checkValues(t, values(c), append(names("a", 3), "x", "y"))
	})
}

// leaderReady reports whether node id's replica of t/0 leads epoch, its
// epoch begun in its log.
func leaderReady(c *tcluster, id uint64, epoch int32) bool {
	n := c.nodes[id]
	tp, ok := n.meta.State().Topic("t")
	if !ok {
		return false
	}
	r := n.rep.replica(pkey{tp.ID, 0})
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.role == roleLeader && r.mu.epoch == epoch && r.mu.ready
}

// logValues decodes raw batches into their values.
func logValues(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	for rest := raw; len(rest) > 0; {
		b, next, err := log.SplitBatch(rest)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := b.Records(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
		rest = next
	}
	return out
}
