// Package history records what clients of a replicated log did and saw,
// and checks it, in the spirit of Jepsen's Kafka workload.
//
// # Recording
//
// Clients (sequential processes) append single records with unique values
// and read from an offset; a Recorder stamps each call with a logical tick
// when it is invoked and when it returns, and keeps its outcome:
//
//	id := rec.InvokeAppend(client, node, "c3-17")
//	res, err := cluster.Append(ctx, ...)
//	rec.CompleteAppend(id, history.OK, res.BaseOffset, nil) // or Fail / Info
//
// Ticks come from one counter under one lock, so they order every event
// totally and consistently with real time: if a completed at a tick before
// b was invoked, a returned before b was called. Outcomes follow Jepsen:
// OK (took effect, result known), Fail (certainly took no effect: record it
// only for errors that guarantee so), Info (unknown: a timeout, a crash; the
// operation may take effect at any later time). An operation still pending
// when the history is taken becomes Info.
//
// # Checking
//
// Check(history, finals, options) judges a finished run against the final
// log of every replica (read after healing and convergence) and returns
// every violation found, each naming the operations involved:
//
//	lost             an acknowledged append missing from the final log
//	duplicate        one record at two offsets (in a log, or acknowledged or
//	                 read at one offset and found at another)
//	conflict         two appends acknowledged with one offset
//	gap              offsets not dense from 0 (a log) or from the read's start
//	real-time        an append acknowledged before another began has the
//	                 higher or same offset
//	stale-read       a read saw a record the final log does not hold there
//	                 (later lost or replaced): every read must be a prefix of
//	                 the final log
//	phantom          a record that no client appended, or whose append
//	                 failed for sure, in a log or a read
//	divergence       replicas hold different logs
//	not-linearizable porcupine finds no linearization (below)
//
// The reference final log is the longest replica's (lowest ID among equals).
//
// Linearizability is checked with porcupine against an append-only log: an
// append with a known offset o is legal when the log holds exactly o
// records; a read from f returning k records is legal when they are the
// log's records f..f+k-1 (a prefix: a follower may serve an older high
// watermark); and a synthetic read after every operation must return the
// whole reference log. Info appends may take effect at any time after their
// invocation (their value's offset in the final log, if there, is their
// offset); Info appends nobody observed and Fail operations are left out.
// The search is bounded by Options.LinearizabilityTimeout; a search that
// times out is inconclusive, not a violation.
//
// With Options.ExpectLoss (writes acknowledged under SyncNever and a crash
// of every replica), losses and their consequences (reads of lost records,
// offsets reused after a loss, real-time order broken by a lost record) are
// reported in Result.Expected instead, and porcupine is skipped when
// anything was lost; the structural checks (gap, duplicate, phantom,
// divergence) still count as violations.
//
// The package is pure: no IO, no goroutines of its own (porcupine starts
// and stops its own within Check), no dependency on replog itself.
package history
