package meta

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestClusterCreateTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.leader()
		c.registered()
		tp, err := c.nodes[2].CreateTopic(ctxT(t, 10*time.Second), "orders", TopicConfig{Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		if tp.Config.ReplicationFactor != 3 || tp.Config.MinInSyncReplicas != 2 || len(tp.Partitions) != 3 {
			t.Fatalf("topic %+v", tp)
		}
		for _, p := range tp.Partitions {
			if p.Leader == 0 || len(p.ISR) != 3 {
				t.Fatalf("partition %+v", p)
			}
		}
		for id, n := range c.nodes {
			got, err := n.Topic(ctxT(t, 10*time.Second), "orders")
			if err != nil || got.ID != tp.ID {
				t.Fatalf("node %d: %v %v", id, got, err)
			}
		}
		if _, err := c.nodes[l].CreateTopic(ctxT(t, 10*time.Second), "orders", TopicConfig{Partitions: 1}); !errors.Is(err, ErrTopicExists) {
			t.Fatalf("second create: %v", err)
		}
		if err := c.nodes[3].DeleteTopic(ctxT(t, 10*time.Second), "orders"); err != nil {
			t.Fatal(err)
		}
		for id, n := range c.nodes {
			// A lease read may trail a delete; a linearizable one may not.
			if _, err := n.LinearizableTopic(ctxT(t, 10*time.Second), "orders"); !errors.Is(err, ErrUnknownTopic) {
				t.Fatalf("node %d after delete: %v", id, err)
			}
		}
	})
}
