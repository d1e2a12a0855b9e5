package replog_test

import (
	"context"
	"fmt"
	"time"

	"github.com/replog/replog"
)

// A three-node cluster in one process: create a topic, append through one
// node, read through another.
func Example() {
	lc, err := replog.NewLocalCluster(3)
	if err != nil {
		panic(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := lc.Node(1).CreateTopic(ctx, "orders", replog.TopicConfig{Partitions: 3}); err != nil {
		panic(err)
	}
	key := []byte("customer-42")
	p := replog.PartitionFor(key, 3)
	res, err := lc.Node(2).Append(ctx, "orders", p, []replog.Record{
		{Key: key, Value: []byte("order created")},
		{Key: key, Value: []byte("order paid")},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("appended at offsets %d..%d\n", res.BaseOffset, res.LastOffset)

	// Wait until node 3's replica has both records committed.
	rr, err := lc.Node(3).Read(ctx, "orders", p, 0, replog.MaxWait(10*time.Second))
	for err == nil && len(rr.Records) < 2 {
		rr, err = lc.Node(3).Read(ctx, "orders", p, int64(len(rr.Records)), replog.MaxWait(10*time.Second))
	}
	if err != nil {
		panic(err)
	}
	for _, r := range rr.Records {
		fmt.Printf("%d: %s\n", r.Offset, r.Value)
	}
	// Output:
	// appended at offsets 0..1
	// 0: order created
	// 1: order paid
}

// Topics and their partitions' leaders and replicas.
func ExampleCluster_Topic() {
	lc, err := replog.NewLocalCluster(3)
	if err != nil {
		panic(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err = lc.Node(1).CreateTopic(ctx, "events", replog.TopicConfig{Partitions: 2, ReplicationFactor: 3})
	if err != nil {
		panic(err)
	}
	// The topic is usable through every node at once.
	ti, err := lc.Node(3).Topic(ctx, "events")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d partitions, replication factor %d, min ISR %d\n",
		ti.Name, len(ti.Partitions), ti.Config.ReplicationFactor, ti.Config.MinInSyncReplicas)
	for _, p := range ti.Partitions {
		fmt.Printf("partition %d: %d replicas, led by its preferred replica: %v\n",
			p.Partition, len(p.Replicas), p.Leader == p.Replicas[0])
	}
	// Output:
	// events: 2 partitions, replication factor 3, min ISR 2
	// partition 0: 3 replicas, led by its preferred replica: true
	// partition 1: 3 replicas, led by its preferred replica: true
}

// Keys map to partitions by xxhash64, stably across releases.
func ExamplePartitionFor() {
	for _, key := range []string{"user-1", "user-2", "user-1"} {
		fmt.Println(key, "→", replog.PartitionFor([]byte(key), 12))
	}
	// Output:
	// user-1 → 4
	// user-2 → 9
	// user-1 → 4
}
