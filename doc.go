// Package replog is an embeddable library for replicated, partitioned logs:
// Kafka's data model (topics, partitions, offsets, record batches, acks,
// in-sync replicas, leader epochs) as a package a Go service imports.
//
// Every service instance runs one node in its own process; the host
// application carries the nodes' messages over a transport of its choice
// (see package transport). Tests can run a whole cluster in one process.
//
// The packages, from the bottom up:
//
//	wal/          checksummed, segmented, group-committed append-only files
//	              with sync deadlines and crash recovery
//	log/          one partition replica's log: record batches, offsets,
//	              high watermark, leader-epoch cache, waiting readers
//	transport/    the Transport contract the host implements, an in-memory
//	              network with faults, and a TCP transport
//	meta/         cluster metadata on etcd raft: topics, partitions,
//	              leaders, epochs, ISR, the controller
//	replication/  leaders, followers, ISR, high watermark, acks, forwarding
//
// The node API of this package (Open, CreateTopic, Append, Read, ...) is
// described in the project's design and arrives with the replication work;
// see README.md for what works today.
package replog
