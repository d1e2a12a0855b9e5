// Package replog is an embeddable library for replicated, partitioned logs:
// Kafka's data model (topics, partitions, offsets, record batches, acks,
// in-sync replicas, leader epochs) as a package a Go service imports.
//
// # Basics
//
// Every service instance runs one node, a *Cluster, in its own process; the
// host application carries the nodes' messages over a transport of its
// choice (package transport: transport/tcp between processes, an in-memory
// network in tests). Each node is opened with the same list of peers:
//
//	tr, _ := tcp.New(tcp.Config{ID: 1, ListenAddr: ":7001", Peers: addrs})
//	c, err := replog.Open(replog.Config{
//		ID:        1,
//		Peers:     []replog.NodeID{1, 2, 3},
//		Dir:       "/var/lib/myservice/replog",
//		Transport: tr,
//	})
//	defer c.Close()
//
// A topic has partitions; each partition is an ordered log whose offsets
// start at 0 and are dense. Any node can create topics, append and read,
// whichever node leads the partition:
//
//	err = c.CreateTopic(ctx, "orders", replog.TopicConfig{Partitions: 6})
//	p := replog.PartitionFor([]byte(orderID), 6)
//	res, err := c.Append(ctx, "orders", p, []replog.Record{{Key: []byte(orderID), Value: body}})
//	// res.BaseOffset..res.LastOffset are the batch's offsets
//	rr, err := c.Read(ctx, "orders", p, 0, replog.MaxWait(time.Second))
//	// rr.Records are committed records from offset 0 on
//
// Tests and single-process programs start a whole cluster in one call:
//
//	lc, err := replog.NewLocalCluster(3)
//	defer lc.Close()
//	lc.Node(1).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1})
//
// # Guarantees
//
//   - Append with AcksAll (the default) returns once every in-sync replica
//     holds the batch and there are at least MinInSyncReplicas of them. No
//     election loses such a batch: only in-sync replicas become leaders.
//     With SyncAlways (the default) each of them has synced it to disk.
//   - Offsets of a partition are contiguous from 0; a batch's records get
//     consecutive offsets in order. Every replica holds the same records at
//     the same offsets below the high watermark.
//   - Read returns only committed records (below the high watermark): a
//     record once read is never lost by a leader change.
//   - A topic that CreateTopic returned for is usable at once through every
//     node.
//   - Append and Read ride out leader elections and lost messages inside
//     the caller's context, and the library's own retries never write a
//     batch twice.
//   - No call blocks without a context or a deadline: a stalled disk fails
//     appends with ErrStorageStalled after SyncTimeout, and leadership moves
//     to a healthy replica.
//
// # Failures
//
// A node that stops answering is declared dead after SessionTimeout; its
// partitions get new leaders from their ISR, so a crash costs appends to its
// partitions about one to two SessionTimeouts. Close does a controlled
// shutdown first (leaderships move before the node goes, and so does the
// controller's role if the node holds it), which costs appends a leader
// change, tens of milliseconds. A partition whose whole
// ISR is gone stays offline until one of them returns: replog never
// elects a replica that may lack acknowledged records.
//
// # Caller's duties
//
//   - Give every node the same Peers and a unique ID; keep Dir across
//     restarts (a node that lost its Dir must not rejoin under its old ID).
//   - Close every Cluster. Open takes ownership of Config.Transport.
//   - Treat a context error, ErrNotLeader or ErrStorageStalled from Append
//     as "maybe written": retry with the same records only if duplicates are
//     acceptable, or read to check.
//
// # Caveats
//
//   - SyncPeriodic and SyncNever acknowledge writes that a machine crash
//     loses (see Durability). They are faster; their safety then rests on
//     replicas failing independently.
//   - Nodes cannot be added or removed after bootstrap, and a topic's
//     partition count is fixed.
//   - There is no consumer-group protocol: readers track their own offsets.
//   - Retention removes whole wal segments (Config.SegmentSize), so a log
//     keeps up to a segment more than RetentionBytes asks.
//   - transport/tcp without TLS neither encrypts nor authenticates: use it on
//     trusted networks only, or configure mutual TLS.
//   - Writes and syncs have deadlines (SyncTimeout); disk reads do not. A
//     Read served from a disk that stops answering reads blocks past its
//     ctx and past Close, until the disk answers. So does the metadata's
//     own store (bbolt) when its syncs stall.
//   - A leader cut off from the cluster acknowledges AcksLeader appends
//     (and AcksAll ones of a partition whose ISR is down to it) until it
//     has been out of touch with the controller for SessionTimeout; the
//     controller fences it and moves its partitions after about as long.
//     Such writes can be lost, as with Kafka's acks=1.
//   - A DeleteTopic that ended with an error may have deleted the topic
//     without every replica node knowing yet. Until such a node applies
//     the deletion, an Append through it may land in the deleted topic's
//     partition (if it leads it) and be acknowledged with AcksLeader (or
//     AcksAll with a replication factor of 1), then vanish; a Read through
//     it may return the deleted topic's records. Call DeleteTopic again
//     until it returns nil or ErrUnknownTopic before creating the topic
//     again. A node cut off from the cluster while DeleteTopic runs is
//     waited for only until the controller fences it; it learns of the
//     deletion when it reaches the cluster again. Until then it may serve
//     Reads of the deleted topic, but acknowledges no writes to it: it
//     stops acknowledging before it can have been fenced (see above).
//
// # Packages
//
//	replog (this)  Cluster: Open, CreateTopic, Append, Read; LocalCluster
//	replication/   leaders, followers, ISR, high watermark, acks, forwarding
//	meta/          cluster metadata on etcd raft; the controller
//	log/           one partition replica's log: batches, offsets, epochs
//	wal/           checksummed, segmented, group-committed files; sync deadlines
//	transport/     the Transport contract, an in-memory network with faults, TCP
//
// Errors are sentinels (ErrUnknownTopic, ...) for errors.Is; each wraps
// the error of the layer it came from as well.
package replog
