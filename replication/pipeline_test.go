package replication

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// replicaLog returns node id's log of partition 0 of topic "t".
func (c *tcluster) replicaLog(id uint64) *log.Log {
	c.t.Helper()
	n := c.nodes[id]
	t, ok := n.meta.State().Topic("t")
	if !ok {
		c.t.Fatalf("node %d does not know topic t", id)
	}
	r := n.rep.replica(pkey{t.ID, 0})
	if r == nil {
		c.t.Fatalf("node %d has no replica of t/0", id)
	}
	return r.log
}

// stallCluster starts three nodes whose file systems can stall, with
// topic "t" (one partition, three replicas), and returns the leader, a
// follower and the stall switches.
func stallCluster(t *testing.T) (*tcluster, uint64, uint64, map[uint64]*wal.StallFS) {
	c, stalls := newStallCluster(t, func(id uint64, cfg *Config) { cfg.SyncTimeout = time.Minute })
	c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
	leader := c.leader("t", 0)
	return c, leader, c.other(leader), stalls
}

// A leader does not hold a batch back while its log syncs the one
// before: the batch reaches the followers, and is durable there, while
// the leader's sync of the first one is still blocked.
func TestLeaderPushesWhileItsSyncRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, leader, follower, stalls := stallCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, leader, "warm", 1)
		base := c.replicaLog(follower).LogEndOffset()

		stalls[leader].Stall()
		errs := make(chan error, 2)
		for _, v := range []string{"a", "b"} {
			go func() {
				_, _, err := c.nodes[leader].rep.Append(ctx, "t", 0, rec(v), AcksAll)
				errs <- err
			}()
			synctest.Wait()
		}
		if n := stalls[leader].Waiting(); n != 1 {
			t.Fatalf("%d syncs blocked on the leader, want 1", n)
		}
		if end := c.replicaLog(follower).LogEndOffset(); end != base+2 {
			t.Fatalf("follower log end %d while the leader's first sync is blocked, want %d (both batches)", end, base+2)
		}
		stalls[leader].Release()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("append: %v", err)
			}
		}
		checkValues(t, values(c), []string{"warm/0", "a", "b"})
	})
}

// A follower queues the next push's batches to its log while the log
// syncs the previous ones (they then share a sync), and answers each only
// once it is durable.
func TestFollowerAppendsWhileItsSyncRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, leader, follower, stalls := stallCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, leader, "warm", 1)
		flog := c.replicaLog(follower)
		base := flog.LogEndOffset()

		stalls[follower].Stall()
		for _, v := range []string{"a", "b"} {
			if _, _, err := c.nodes[leader].rep.Append(ctx, "t", 0, rec(v), AcksLeader); err != nil {
				t.Fatalf("append %s: %v", v, err)
			}
			synctest.Wait()
		}
		if n := stalls[follower].Waiting(); n != 1 {
			t.Fatalf("%d syncs blocked on the follower, want 1", n)
		}
		if next, end := flog.NextOffset(), flog.LogEndOffset(); next != base+2 || end != base {
			t.Fatalf("follower: next offset %d, log end %d while its first sync is blocked; want %d and %d", next, end, base+2, base)
		}
		if hw := c.replicaLog(leader).HighWatermark(); hw > base {
			t.Fatalf("leader high watermark %d passed what the stalled follower holds durably (%d)", hw, base)
		}
		stalls[follower].Release()
		c.converged("t", 0)
		checkValues(t, values(c), []string{"warm/0", "a", "b"})
	})
}
