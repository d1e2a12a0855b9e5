// Package log is one partition replica's log: record batches with dense
// offsets on top of a wal.Log, a sparse offset index, the high watermark,
// the leader-epoch cache, truncation, retention, and waiters for new data.
//
// # Basics
//
// A Log is a directory. The leader appends records and the log assigns
// offsets; a follower appends the leader's encoded batches unchanged; both
// read back whole batches (to replicate) or decoded records (to consume):
//
//	l, err := log.Open(log.Options{WAL: wal.Options{Dir: dir}})
//	base, last, err := l.AppendLeader(ctx, epoch, records) // offsets base..last
//	end, err := l.AppendFollower(ctx, rawBatches)           // leader's bytes
//	buf, err := l.ReadBatches(nil, from, limit, maxBytes)   // raw batches
//	recs, err := l.Read(from, l.HighWatermark(), maxBytes)  // decoded records
//	err = l.Wait(ctx, offset)                               // until HW > offset
//
// Offsets start at 0 and are dense. Each batch is one wal frame.
// Replication builds on: AppendLeader / AppendLeaderBatch (idempotent
// producer fields), AppendFollower, ReadBatches, SetHighWatermark,
// WaitEnd (a leader waiting for data to serve a fetch), BeginEpoch and
// EndOffsetForEpoch (leader-epoch truncation), TruncateTo (and
// TruncateBelowHighWatermark, see the caveats), ResetTo (a follower
// starting over at its leader's log start). Consumers use
// Read below HighWatermark and Wait.
//
// # Guarantees
//
//   - LogEndOffset counts only batches the wal has acknowledged (written,
//     and synced under wal.SyncAlways): what it reports survives what the
//     wal's durability promises. Offsets handed out to AppendLeader callers
//     whose write is still in flight are not yet in it.
//   - The high watermark never exceeds LogEndOffset and never moves
//     backwards while the Log is open, with two exceptions: a
//     TruncateBelowHighWatermark on a Log whose Options.WAL.Durability is
//     not wal.SyncAlways lowers it to the new log end (see the caveats),
//     and ResetTo sets it to the new log start, whatever it was. It is
//     persisted lazily (checkpoints, Close); after a crash it comes back
//     at or below where it was (a crash during ResetTo included), never
//     above the recovered log end.
//   - Reads never return a record at or above the limit the caller passes,
//     nor beyond LogEndOffset. Below LogStartOffset they fail with
//     ErrOffsetOutOfRange.
//   - Batch epochs never decrease along the log; the leader-epoch cache
//     holds, for each epoch, the offset of its first batch, and stays
//     consistent through TruncateTo, retention, crashes and recovery.
//   - TruncateTo never removes a record below the high watermark;
//     TruncateBelowHighWatermark does only when Durability is not
//     SyncAlways (under SyncAlways it refuses as TruncateTo does).
//   - A storage failure (wal.ErrStorageStalled, IO errors) is returned
//     wrapped, so errors.Is finds the wal's sentinel; after it the Log
//     fails every write (the wal's failure is sticky): Close and Open again.
//
// # Caller's duties
//
//   - One Log per directory, opened by one process at a time.
//   - AppendLeader is for the leader of the given epoch, AppendFollower for a
//     follower; the caller (replication) decides which role applies and
//     calls TruncateTo before following a new leader.
//   - Call EnforceRetention when retention should run (e.g. on a timer).
//   - Close the Log: it stops the checkpoint goroutine and writes the
//     checkpoint that makes the next Open fast.
//
// # Caveats
//
//   - The high watermark is persisted lazily (background checkpoints,
//     TruncateTo, Close): after a crash it may come back lower, never
//     higher than the recovered log end. Replication raises it again.
//   - An epoch begun by BeginEpoch is persisted with the next checkpoint or
//     the epoch's first batch; a crash before either forgets it (the node
//     that restarts is no longer that epoch's leader anyway).
//   - TruncateTo is for a follower. An AppendLeader that races it may be
//     acknowledged and then truncated away.
//   - TruncateBelowHighWatermark is for a follower told by its current
//     leader to truncate to a point below this log's high watermark. That
//     happens only when the wal does not sync every append (SyncNever,
//     SyncInterval): after every replica crashed, the new leader may have
//     lost more unsynced records than this follower, which had already
//     seen them committed. The follower must follow its leader, so the
//     high watermark goes back to the new log end, and records a reader
//     saw committed below the old high watermark may be gone or replaced
//     (the loss SyncNever documents). A Wait already released stays
//     released; reads never go past the new log end.
//   - LogEndOffset moves when some call observes the wal's progress: the
//     appender's own return, LogEndOffset, reads, SetHighWatermark. An
//     append whose caller gave up (ctx ended) after enqueueing becomes
//     visible at the next such call, so a WaitEnd may sleep until then.
//   - Retention runs only when EnforceRetention is called, and removes
//     whole wal segments: Options.WAL.SegmentSize is its granularity.
//   - Storage failures are sticky (the wal's): every later write fails;
//     Close and Open again to recover from what is on disk.
//   - Checkpoint files are written under the wal's SyncTimeout: one still
//     blocked past it is abandoned with wal.ErrStorageStalled, and the
//     goroutine writing it exits when the file system returns. Until then
//     later checkpoints, and so TruncateTo, fail with ErrStorageStalled.
//
// # Memory ownership
//
// AppendLeader copies the records; the caller may reuse them at once.
// AppendFollower copies the bytes into the wal. ReadBatches appends to the
// caller's dst and returns it: the caller owns it (with spare capacity in
// dst the wal reads straight into it). Read returns records whose Key,
// Value and header Values alias buffers allocated for that call: the
// caller owns them, the Log never touches them again. Batch
// decoding (Batch.Records) aliases the Batch's bytes; Record.Clone copies.
//
// # Timestamps
//
// Record timestamps are stored as nanoseconds since the Unix epoch (int64),
// not milliseconds as in Kafka: a time.Time round-trips exactly (but for
// its location, which comes back UTC, and its monotonic reading), which
// event-sourcing users compare and deduplicate on; the cost is a few more
// varint bytes per record only when timestamps within a batch differ. The
// storable range is 1970-01-01T00:00:00Z to 2262-04-11T23:47:16Z; anything
// else is ErrInvalidRecord. A zero Timestamp on AppendLeader means the
// Log's clock (Options.Clock), read once per batch.
//
// # Record batch format (version 1)
//
// All fixed-size integers are big-endian; varints are zig-zag (as
// encoding/binary.AppendVarint). The CRC-32C (Castagnoli) covers bytes 21
// to the end: the base offset and the leader epoch are outside it, so the
// log stamps them into an encoded batch without recomputing the checksum.
//
//	 0                   8          12            16    17       21
//	+-------------------+----------+-------------+-----+--------+
//	| base offset  i64  | len  i32 | leader epoch| ver | crc32c | ...
//	|                   | (bytes   |   i32       | =1  |  u32   |
//	|                   | after it)|             |     |        |
//	+-------------------+----------+-------------+-----+--------+
//	 21          23                27                 35                43
//	+-----------+-----------------+------------------+-----------------+
//	| attrs i16 | last off delta  | base timestamp   | max timestamp   | ...
//	| (0)       |  i32 = count-1  |  i64 ns          |  i64 ns         |
//	+-----------+-----------------+------------------+-----------------+
//	 43              51             53               57             61
//	+---------------+--------------+----------------+--------------+=========+
//	| producer id   | producer     | base sequence  | record count | records |
//	|  i64 (-1)     | epoch i16(-1)|  i32 (-1)      |  i32 (>= 1)  |         |
//	+---------------+--------------+----------------+--------------+=========+
//
// attrs bits 0-2 name a compression codec (only 0, none, exists); the other
// bits are reserved and zero. Each record:
//
//	varint length of the rest | i8 attrs (0) | varint timestamp delta (ns,
//	from the base timestamp) | varint offset delta (= its index) |
//	varint key length (-1 = nil) | key | varint value length (-1 = nil) |
//	value | varint header count | per header: varint key length | key |
//	varint value length (-1 = nil) | value
//
// Decoders check every length against what is left before slicing or
// allocating, so hostile input cannot make them allocate more than its size.
//
// # Files
//
// The directory holds the wal's segments (see package wal) and one
// checkpoint file, "log.checkpoint", written with wal.WriteFileAtomic by
// Close (after a wal sync, covering everything), by a background goroutine
// every Options.CheckpointInterval bytes of appends (covering only what
// the wal has already made durable: it never syncs the wal itself), and
// by TruncateTo before it truncates (covering the truncated log):
//
//	+------------------+---------+-----------+--------------+------------+
//	| "RLOGCKP\0"      | ver u32 | cover pos | cover offset | high water |
//	|                  |   = 1   |   i64     |   i64        |   i64      |
//	+------------------+---------+-----------+--------------+------------+
//	+--------------+-----------+-----------+----------------+-------------------------+--------+
//	| start offset | n epochs  | n index   | n × (epoch i32 | n × (offset i64, pos i64,| crc32c |
//	|   i64        |   u32     |   u32     |  start i64)    |  max timestamp i64)     |  u32   |
//	+--------------+-----------+-----------+----------------+-------------------------+--------+
//
// The checkpoint describes the log up to the wal position "cover pos"
// (log end offset "cover offset" there), all of it durable when the file
// is written; its high watermark is at most cover offset. Open loads it and scans only the
// wal frames after cover pos, validating each batch and rebuilding the
// index and the epoch cache for them; a missing or unusable checkpoint
// means a scan from the wal's start. After a clean Close the tail is
// empty, so Open reads one small file and the frames after the last index
// entry, not the log.
//
// # Offset index
//
// In memory, one entry per Options.IndexInterval bytes of wal (default
// 16 KiB): (base offset, wal position, max timestamp of the batches up to
// the next entry), 24 bytes, so 1.5 MiB of RAM and of checkpoint per GiB
// of log. A read binary-searches it and reads at most about
// IndexInterval bytes of frames before the one it wants. Retention by
// time uses its timestamps.
//
// # Concurrency
//
// All methods are safe for concurrent use. AppendLeader encodes outside
// the Log's lock, then, under it, stamps the base offset and enqueues the
// frame in offset order, and waits for the wal outside it: concurrent
// appends share the wal's group commit. Reads scan the wal outside the
// lock too; TruncateTo and EnforceRetention exclude reads while they drop
// data.
package log
