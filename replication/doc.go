// Package replication keeps the replicas of each partition in step, with
// Kafka's protocol: one leader per partition and leader epoch, followers
// that fetch from it, an in-sync replica set (ISR) that the controller
// changes, and a high watermark below which records are committed.
//
// This package is being built in pieces. What is here now are the pure
// rules the leader applies, each a small function over plain values:
//
//   - highWatermark: the smallest log end offset over the ISR; it does not
//     move while the ISR is smaller than MinInSyncReplicas.
//   - observeFetch, laggingReplicas: Kafka's lastCaughtUpTime; an ISR member
//     not caught up for longer than the lag bound is shrunk out.
//   - canJoinISR: a follower rejoins once it holds everything below the high
//     watermark and everything before the leader's epoch began.
//   - producerState: per-producer sequence windows, so that the library's own
//     retries of a forwarded or replicated batch never write it twice.
//
// Fetch, acknowledgement and truncation by leader epoch, and the per
// partition state machine that drives them, arrive with the Cluster API.
package replication
