package meta_test

import (
	"context"
	"fmt"
	"time"

	"github.com/replog/replog/internal/mux"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
)

// Three nodes in one process over a MemNetwork, wired as the root package
// wires them: one mux per node's transport, raft and meta traffic tagged.
func Example() {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	peers := []uint64{1, 2, 3}
	var nodes []*meta.Node
	for _, id := range peers {
		ep := net.Endpoint(id)
		m := mux.New(ep)
		n, err := meta.Open(meta.Config{ID: id, Peers: peers, TickInterval: 10 * time.Millisecond,
			Raft: m.Sender(mux.TagRaft), Meta: m.Sender(mux.TagMeta)})
		if err != nil {
			panic(err)
		}
		defer n.Close()
		defer ep.Close()
		_ = m.Handle(mux.TagRaft, n.HandleRaft)
		_ = m.Handle(mux.TagMeta, n.HandleMeta)
		_ = m.Start()
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Wait until all three nodes have registered, then create a topic.
	w := nodes[0].Watch()
	defer w.Close()
	for len(nodes[0].State().Nodes()) < 3 {
		if _, err := w.Next(ctx); err != nil {
			panic(err)
		}
	}
	if _, err := nodes[1].CreateTopic(ctx, "orders", meta.TopicConfig{Partitions: 3}); err != nil {
		panic(err)
	}
	// Every node finds it: locally under a lease, else after a ReadIndex.
	t, err := nodes[2].Topic(ctx, "orders")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Name, len(t.Partitions), "partitions, replication factor", t.Config.ReplicationFactor)
	// Output: orders 3 partitions, replication factor 3
}
