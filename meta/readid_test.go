package meta

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

// A ReadIndex answer addressed to a node's previous Open, delivered after
// the node opened again, must not resolve the new Open's first Barrier
// with the old, smaller index: LinearizableTopic would then miss a topic
// whose CreateTopic returned before it was called.
func TestStaleReadIndexAnswerIgnoredAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.leader()
		c.registered()
		f := otherThan(c.peers, l)[0]
		c.waitFor("follower caught up", 300, func() bool {
			return c.nodes[f].State().Index() == c.nodes[l].State().Index()
		})
		time.Sleep(time.Second)
		// Answers from the leader to f take 5 s.
		c.net.SetLink(l, f, transport.LinkFaults{Delay: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := c.nodes[f].Barrier(ctx); err == nil { // answered late
			t.Fatal("Barrier answered through a 5 s delay within 1 s")
		}
		cancel()
		c.stop(f)
		if _, err := c.nodes[l].CreateTopic(ctxT(t, 10*time.Second), "t", TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		c.net.SetLink(l, f, transport.LinkFaults{})
		n := c.start(f)
		// Called after CreateTopic returned: must find "t".
		if _, err := n.LinearizableTopic(ctxT(t, 30*time.Second), "t"); err != nil {
			t.Fatalf("LinearizableTopic after CreateTopic returned: %v", err)
		}
	})
}
