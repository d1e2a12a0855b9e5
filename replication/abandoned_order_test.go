package replication

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
)

// An Append whose ctx ended while its forwarded message was lost returns
// ctx's error. The producer must not send it again afterwards: it would
// land after the next Append of the same goroutine, reordering what one
// caller appended in sequence.
func TestAbandonedAppendNeverLandsAfterLaterOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, l, f := forwardingPair(t)
		ctx := context.Background()

		// A's forwarded message is lost.
		c.net.SetLink(f, l, transport.LinkFaults{Drop: 1})
		actx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, _, errA := c.nodes[f].rep.Append(actx, "t", 0, rec("A"), AcksAll)
		cancel()
		if errA == nil {
			t.Fatal("A succeeded through a dead link")
		}
		c.net.Heal()

		// The same goroutine appends B next.
		bBase, _, errB := c.nodes[f].rep.Append(ctx, "t", 0, rec("B"), AcksAll)
		if errB != nil {
			t.Fatalf("B: %v", errB)
		}
		// Let the producer's timer run.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		got := values(c)
		for i, v := range got {
			if v == "A" {
				t.Fatalf("A, whose Append returned %v, was written at index %d after B (index %d): log %v",
					errA, i, bBase, got)
			}
		}
	})
}

// forwardingPair makes a 3-node cluster with topic "t" (one partition, RF
// 3) and returns it, the partition's leader l, and another node f that has
// appended one record ("warm") through l already.
func forwardingPair(t *testing.T) (c *tcluster, l, f uint64) {
	t.Helper()
	c = newTCluster(t, 3, nil)
	c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
	l = c.leader("t", 0)
	f = c.other(l)
	appendN(t, context.Background(), c, f, "warm", 1)
	return c, l, f
}
