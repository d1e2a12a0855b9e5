package replog_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/transport"
)

// Calls made before the cluster is up wait for it inside their context
// (Open's doc), CreateTopic too: right after Open of a fresh single-node
// cluster, before the node registered, it must not fail with
// ErrNotEnoughReplicas.
func TestCreateTopicRightAfterOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		c, err := replog.Open(replog.Config{ID: 1, Peers: []replog.NodeID{1}, Transport: net.Endpoint(1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1}); err != nil {
			t.Fatalf("CreateTopic right after Open of a 1-node cluster = %v", err)
		}
		if _, err := c.Append(ctx, "t", 0, []replog.Record{{Value: []byte("x")}}); err != nil {
			t.Fatalf("Append = %v", err)
		}
	})
}

// The same with three nodes opened one after the other with Open (as three
// processes would): CreateTopic on node 1 right after the three Opens.
func TestCreateTopicRightAfterOpenThree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		var cs []*replog.Cluster
		for id := replog.NodeID(1); id <= 3; id++ {
			c, err := replog.Open(replog.Config{ID: id, Peers: []replog.NodeID{1, 2, 3}, Transport: net.Endpoint(id)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cs = append(cs, c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cs[0].CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1}); err != nil {
			t.Fatalf("CreateTopic right after Open of 3 nodes = %v", err)
		}
	})
}

// AutoCreate: the first Append right after Open creates the topic, rather
// than fail with ErrNotEnoughReplicas (which Append documents as "maybe
// written").
func TestAutoCreateAppendRightAfterOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		c, err := replog.Open(replog.Config{ID: 1, Peers: []replog.NodeID{1}, Transport: net.Endpoint(1),
			AutoCreate: &replog.TopicConfig{Partitions: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.Append(ctx, "t", 0, []replog.Record{{Value: []byte("x")}}); err != nil {
			t.Fatalf("auto-creating Append right after Open of a 1-node cluster = %v", err)
		}
	})
}

// With a peer down for good (registered, then fenced) and none still to
// register, a CreateTopic that needs it fails at once with
// ErrNotEnoughReplicas rather than wait for its ctx.
func TestCreateTopicNotEnoughNodesFailsOnceAllRegistered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		if err := lc.Stop(3); err != nil {
			t.Fatal(err)
		}
		settle() // node 3's session ends: fenced
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		err := lc.Node(1).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		if !errors.Is(err, replog.ErrNotEnoughReplicas) || time.Since(start) > testSession {
			t.Fatalf("CreateTopic with RF 3 and one of 3 nodes down = %v after %v, want ErrNotEnoughReplicas at once", err, time.Since(start))
		}
	})
}
