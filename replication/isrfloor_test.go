package replication

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
)

// recordISRRequests makes node id's replication record every ISR it asks
// the controller for.
func recordISRRequests(c *tcluster, id uint64) func() [][]uint64 {
	var mu sync.Mutex
	var asked [][]uint64
	mn := c.nodes[id].meta // the hook runs on the Manager's goroutines: not c.nodes, which stop changes
	hook := alterISRFunc(func(ctx context.Context, topic string, topicID uint64, partition int32, le, pe int32, isr []uint64) (meta.Partition, error) {
		mu.Lock()
		asked = append(asked, slices.Clone(isr))
		mu.Unlock()
		return mn.AlterISR(ctx, topic, topicID, partition, le, pe, isr)
	})
	c.nodes[id].rep.alterISRHook.Store(&hook)
	return func() [][]uint64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
}

// othersThan returns the IDs of the cluster's nodes but id.
func (c *tcluster) othersThan(id uint64) []uint64 {
	var out []uint64
	for _, o := range c.ids {
		if o != id {
			out = append(out, o)
		}
	}
	return out
}

// The ISR kept at MinInSyncReplicas keeps a member the high watermark
// counts, never a draining one: the high watermark leaves a draining
// member out, so it may lack committed records, and as the last ISR
// member it could be elected. Here the draining follower has the longer
// log, which alone would pick it.
func TestISRFloorKeepsNoDrainingMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, senders := newCutCluster(t, 0)
		l, _ := c.topicT() // MinInSyncReplicas 2
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 3)
		var b, d uint64
		for _, id := range c.ids {
			switch {
			case id == l:
			case b == 0:
				b = id
			default:
				d = id
			}
		}
		asked := recordISRRequests(c, l)
		senders[l].set(b) // b stops receiving: d's log gets longer
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil {
			t.Fatal(err)
		}
		c.waitFor("d holds x", 30*time.Second, func() bool {
			_, end, ok := c.logBytes(d, "t", 0)
			return ok && end == 4
		})
		if err := c.nodes[d].meta.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		senders[l].set(b, d)
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("y"), AcksLeader); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Second) // fake time: ReplicaLagTime many times over
		reqs := asked()
		if len(reqs) == 0 {
			t.Fatal("the leader never asked to shrink the ISR")
		}
		for _, isr := range reqs {
			if !slices.Equal(isr, []uint64{min(l, b), max(l, b)}) {
				t.Errorf("the leader asked for ISR %v; want the leader and %d (%d drains)", isr, b, d)
			}
		}
	})
}

// A controlled shutdown of a leader cut off from its followers returns:
// the ISR kept at MinInSyncReplicas hands the leadership to a follower
// that lagged, which cannot tell this node it took over.
func TestShutdownOfCutOffLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, senders := newCutCluster(t, 0)
		l, _ := c.topicT() // MinInSyncReplicas 2
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 3)
		others := c.othersThan(l)
		senders[l].set(others...) // cut off both ways
		for _, id := range others {
			senders[id].set(l)
		}
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil {
			t.Fatal(err)
		}
		c.waitFor("one lagging follower out of the ISR", 60*time.Second, func() bool {
			p, _ := c.nodes[l].meta.State().Partition("t", 0)
			return len(p.ISR) == 2
		})
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		if err := c.nodes[l].rep.Shutdown(sctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		c.stop(l)
		for _, id := range others {
			senders[id].set()
		}
		appendN(t, ctx, c, c.waitNewLeader(l), "b", 2)
		checkValues(t, values(c), append(names("a", 3), names("b", 2)...))
	})
}

// An AcksAll append waiting for the high watermark when the ISR comes to
// be held at MinInSyncReplicas (its followers lag) fails at once with
// ErrNotEnoughReplicas, as when the ISR shrinks below it, not at the
// producer's next resend.
func TestISRFloorAnswersWaitingAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, senders := newCutCluster(t, 0)
		l, _ := c.topicT() // MinInSyncReplicas 2
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 3)
		others := c.othersThan(l)
		senders[l].set(others...)
		start := time.Now()
		_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("w"), AcksAll)
		if !errors.Is(err, ErrNotEnoughReplicas) {
			t.Fatalf("AcksAll append as the followers fall behind: %v, want ErrNotEnoughReplicas", err)
		}
		// The followers lag after ReplicaLagTime (a tick later), and the
		// producer waits out a short ISR for ReplicaLagTime before it
		// gives up (fake time). Answered only at the producer's
		// resend, it took 5.04–5.13 s; the ticks that detect the lag and
		// end the wait add up to two.
		lag := c.nodes[l].rep.cfg.ReplicaLagTime
		if d := time.Since(start); d > 2*lag+3*c.nodes[l].rep.cfg.tickInterval() {
			t.Fatalf("answered %v after the append (ReplicaLagTime %v)", d, lag)
		}
	})
}
