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

// While a leader's request to add a follower to the ISR is on its way,
// its high watermark must count that follower: the controller may apply
// the addition and hand the follower the leadership (it is the preferred
// replica) before the leader learns of it, and a record committed without
// the follower meanwhile would be lost (Kafka's maximal ISR, KIP-497).
// Found by the chaos soak (seed 242286920536, SyncAlways): the preferred
// replica rejoined and was elected lacking two acknowledged records.
func TestHighWatermarkCountsFollowerBeingAdded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, senders := newCutCluster(t, 0)
		f, _ := c.topicT()
		part, _ := c.nodes[f].meta.State().Partition("t", 0)
		if part.Replicas[0] != f {
			t.Fatalf("leader %d is not the preferred replica %v", f, part.Replicas)
		}
		l := part.Replicas[1]
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, f, "a", 3)
		checkValues(t, values(c), names("a", 3))

		// F, the preferred replica, stops: L leads, F leaves the ISR.
		c.stop(f)
		c.waitFor("L leads without F in the ISR", 60*time.Second, func() bool {
			p, ok := c.nodes[l].meta.State().Partition("t", 0)
			return ok && p.Leader == l && !slices.Contains(p.ISR, f) && leaderReady(c, l, p.LeaderEpoch)
		})
		// L's request to add F back is held on its way to the controller
		// until released; L's pushes to F are lost from then on.
		requested, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		ml := c.nodes[l].meta // the hook runs on the Manager's goroutines: not c.nodes, which stop changes
		hook := alterISRFunc(func(ctx context.Context, topic string, topicID uint64, partition int32, leaderEpoch, partitionEpoch int32, isr []uint64) (meta.Partition, error) {
			if slices.Contains(isr, f) {
				once.Do(func() { close(requested) })
				select {
				case <-release:
				case <-ctx.Done():
					return meta.Partition{}, ctx.Err()
				}
			}
			return ml.AlterISR(ctx, topic, topicID, partition, leaderEpoch, partitionEpoch, isr)
		})
		c.nodes[l].rep.alterISRHook.Store(&hook)
		c.start(f)
		select {
		case <-requested: // F caught up (nothing was appended while it was away) and confirmed it
		case <-ctx.Done():
			t.Fatal("L never asked to add F to the ISR")
		}
		senders[l].set(f)

		// z, appended now, must not be acknowledged without F.
		zctx, zcancel := context.WithTimeout(ctx, time.Second)
		_, _, zerr := c.nodes[l].rep.Append(zctx, "t", 0, rec("z"), AcksAll)
		zcancel()
		if zerr == nil {
			t.Error("z acknowledged while the ISR addition of F, which lacks it, was pending")
		} else if !errors.Is(zerr, context.DeadlineExceeded) {
			t.Fatalf("append z: %v", zerr)
		}

		// The addition lands; the controller hands F its leadership back.
		close(release)
		c.waitFor("F leads again", 60*time.Second, func() bool {
			p, ok := c.nodes[f].meta.State().Partition("t", 0)
			return ok && p.Leader == f && leaderReady(c, f, p.LeaderEpoch)
		})
		senders[l].set()
		appendN(t, ctx, c, f, "w", 1)
		want := append(names("a", 3), "w/0")
		var got []string
		for _, v := range values(c) {
			if v != "z" || zerr == nil {
				got = append(got, v)
			}
		}
		if zerr == nil {
			want = append(want, "z") // acknowledged: it must be there, once
		}
		checkValues(t, got, want)
	})
}

// A leader asks the controller to add back only followers that may join
// the ISR (not fenced, draining or unhealthy). The controller refuses a
// request that adds one that may not, whole: a leader that kept asking
// for a caught-up ineligible follower together with an eligible one added
// neither, for as long as the first stayed ineligible, and AcksAll
// appends failed with ErrNotEnoughReplicas meanwhile (found by
// TestForwardLossRetriedOnce: the old leader, fenced but still following
// the new one, blocked the other follower's return for seconds).
func TestISRAddsOnlyEligibleFollowers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, stalls := newStallCluster(t, func(id uint64, cfg *Config) {
			// Stalled followers leave the ISR (ReplicaLagTime) long before
			// they would report their storage stalled (SyncTimeout).
			cfg.SyncTimeout = time.Minute
		})
		// MinInSyncReplicas 1: the ISR may shrink to the leader alone (a
		// leader keeps it at MinInSyncReplicas at least).
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l := c.leader("t", 0)
		var others []uint64
		for _, id := range c.ids {
			if id != l {
				others = append(others, id)
			}
		}
		drained, back := others[0], others[1]
		appendN(t, ctx, c, l, "a", 3)
		isr := func() []uint64 {
			p, _ := c.nodes[l].meta.State().Partition("t", 0)
			return p.ISR
		}
		stalls[drained].Stall()
		stalls[back].Stall()
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil {
			t.Fatal(err)
		}
		c.waitFor("both followers out of the ISR", 30*time.Second, func() bool { return len(isr()) == 1 })
		// The draining node may not join the ISR any more, but goes on
		// following.
		if err := c.nodes[drained].meta.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		stalls[drained].Release()
		stalls[back].Release()
		c.waitFor("the eligible follower back in the ISR", 30*time.Second, func() bool {
			return slices.Equal(isr(), []uint64{min(l, back), max(l, back)})
		})
		appendN(t, ctx, c, l, "b", 3)
		// The draining node stays out: it must register again to rejoin.
		if slices.Contains(isr(), drained) {
			t.Fatalf("ISR %v holds the draining node %d", isr(), drained)
		}
	})
}
