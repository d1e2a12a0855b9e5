package replication

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
)

// A follower that answered "mismatch" to a push drops the later pushes of
// that generation even when they reach it in a later step and happen to
// continue its log: the leader rematches from the log end the mismatch
// answer gave, and a log grown past it would be told to truncate, below
// the high watermark if the leader's acknowledgements moved it meanwhile.
// (Lost acks made the leader resend from an older end, the follower
// answered mismatch and took the next push of the generation, and the
// rematch's truncation was refused under SyncAlways: the follower failed
// and never caught up; TestForwardLossRetriedOnce showed it about once in
// a hundred runs.)
func TestFollowerDropsRestOfMismatchedGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		leader := c.leader("t", 0)
		follower := c.other(leader)
		appendN(t, ctx, c, leader, "a", 3)
		c.converged("t", 0)
		end := c.replicaLog(follower).LogEndOffset()

		// One more record the follower does not receive.
		c.net.Isolate(follower)
		appendN(t, ctx, c, leader, "b", 1)
		ll := c.replicaLog(leader)
		before, err := ll.ReadBatches(nil, end-1, end, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		next, err := ll.ReadBatches(nil, end, end+1, 1<<20)
		if err != nil || len(next) == 0 {
			t.Fatalf("leader batch at %d: %v", end, err)
		}

		// Pushes of a generation the leader never used (its answers go
		// nowhere anyway): the first does not continue the log (it
		// starts one batch back), the second, taken in a later step,
		// would.
		top, ok := c.nodes[follower].meta.State().Topic("t")
		if !ok {
			t.Fatal("follower does not know topic t")
		}
		r := c.nodes[follower].rep.replica(pkey{top.ID, 0})
		r.mu.Lock()
		epoch := r.mu.epoch
		r.mu.Unlock()
		const gen = 1 << 30
		r.onPush(leader, &pushItem{topicID: r.key.topicID, partition: 0, epoch: epoch, gen: gen, prevEnd: end - 1, hw: -1, batches: before})
		synctest.Wait()
		r.onPush(leader, &pushItem{topicID: r.key.topicID, partition: 0, epoch: epoch, gen: gen, prevEnd: end, hw: -1, batches: next})
		synctest.Wait()
		if got := c.replicaLog(follower).NextOffset(); got != end {
			t.Fatalf("follower log ends at %d after the second push of a mismatched generation, want %d (dropped)", got, end)
		}
		r.mu.Lock()
		failed := r.mu.failed
		r.mu.Unlock()
		if failed != nil {
			t.Fatalf("follower failed: %v", failed)
		}

		// The leader's own generation still catches it up.
		c.net.Heal()
		vals := values(c)
		checkValues(t, vals, append(names("a", 3), names("b", 1)...))
	})
}
