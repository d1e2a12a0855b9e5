// Package wal is replog's write-ahead log: segmented, append-only files of
// checksummed frames, written by group commit, with sync deadlines, crash
// recovery of a torn tail, truncation and retention.
//
// # Basics
//
// A Log lives in one directory of an FS. Callers append opaque payloads; each
// payload becomes one frame, and the frame's Pos (its logical byte position)
// is its address forever:
//
//	l, err := wal.Open(wal.Options{Dir: dir})
//	pos, err := l.Append(ctx, payload)         // written and, by default, synced
//	payload, next, err := l.ReadAt(pos, nil)   // read it back
//
// Append is Enqueue followed by Wait. Many goroutines may append at once: one
// writer goroutine owned by the Log takes everything queued, writes it with
// one write call and (by the Durability policy) one sync, then releases every
// waiter of that round with the round's result. Positions are assigned in the
// order Enqueue is called, so a caller that needs two payloads in order
// enqueues them from one goroutine and waits only for the second.
//
// Positions grow monotonically: frame n+1 starts where frame n ends
// (Pos + FrameHeaderSize + len(payload)). They never restart, not across
// segments, not after DeleteBefore; TruncateAfter(pos) makes pos the end so
// the next frame is written at pos again.
//
// # Durability
//
// Options.Durability chooses what Wait (and so Append) promises:
//
//   - SyncAlways (the default): every group commit is synced (fdatasync)
//     before its callers return. An acknowledged frame survives a crash of the
//     process, the OS or the machine.
//   - SyncInterval: frames are written to the OS at once and synced every
//     SyncInterval. A crash of the OS or the machine LOSES up to SyncInterval
//     of acknowledged frames. A process crash loses nothing.
//   - SyncNever: frames are written to the OS and synced only when a segment
//     rolls, on Sync and on Close. A crash of the OS or the machine LOSES an
//     unbounded amount of acknowledged frames. Use it only where another
//     replica holds the data (as Kafka's default does) or for tests.
//
// DurableEnd reports how far data is known to be synced, whatever the policy.
//
// Under SyncInterval and SyncNever (and for a Log sharing a Journal) the Log
// starts the write-back of every WriteBackBytes it writes (WriteBacker:
// sync_file_range on Linux), so that dirty pages never pile up and a roll's
// or Close's sync finds little left to write. That makes nothing durable
// sooner; it spreads the device's work, and when writers outrun the device
// it is where they wait.
//
// # Sync groups
//
// Each Log syncs its own active segment, one fdatasync per group commit. A
// node with many Logs (one per partition replica) on one disk then issues
// one device flush per Log per round, and many disks serialise flushes: the
// node's synced throughput is divided among its Logs. Options.SyncGroup
// shares one SyncGroup among Logs: a Log that needs a sync joins the next
// flush of the group, and one flush of the whole file system (syncfs(2) on
// Linux) covers every Log that joined it, so the node pays one device flush
// per round instead of one per Log:
//
//	        time ──────────────────────────────────────────────►
//	Log A   write ┐
//	Log B         │   write ┐
//	Log C         │         │  write ┐
//	group         [ flush 1: A ]─────[ flush 2: B, C ]
//	acks                       A                     B, C
//
// A flush counts for a Log only if it starts after the Log's write
// returned (B above waits for flush 2: flush 1 was running when it
// asked); flushes never overlap; the first Log to ask runs the flush, the
// others wait for it (the group owns no goroutine). What the Durability
// promises is unchanged; SyncTimeout bounds each Log's sync including its
// wait for the flush.
//
// The price: syncfs writes back every dirty file of the file system, other
// programs' too, so a Log's latency depends on them; it reports writeback
// errors only since Linux 5.8; and since an error it reports may belong to
// any file, a failed flush fails every Log it covered and the group itself
// (every later sync through it fails). Where all of a process's Logs live
// on one file system (LocalCluster, one node per disk), one group for the
// process is best. An FS that does not implement FSSyncer gets no merging.
// Whether a group is faster depends on the file system and on how the Logs'
// syncs line up (see SyncGroup): measure.
//
// # Journal
//
// A Journal is the other way to pay one sync per round for many Logs: a
// node-level redo journal in its own directory. A Log opened with
// Options.Journal does not fdatasync its active segment per group commit.
// It writes its frames to the segment (the page cache) and then appends
// one record to the journal holding what it just wrote; its frames are
// durable (Wait returns) once the journal has synced that record. The
// journal's writer takes every record queued meanwhile, whichever Log it
// comes from, and writes them with one write and one fdatasync of one
// sequential file; it keeps one such sync in flight while it writes the
// next batch, and publishes their ends in order. A Log does not wait for its round's journal sync before writing
// its next round. No timer, no waiting to fill a batch.
//
//	Log A   write seg A ─ record ┐
//	Log B   write seg B ─ record ┤
//	Log C   write seg C ─ record ┤
//	journal                      └─[ one write, one fdatasync ]── acks A, B, C
//
// The trade-off: every byte is written twice (to its segment, later
// written back by the OS or synced at a checkpoint, and to the journal),
// for one fdatasync per node round instead of one per Log. It pays where
// syncs, not bytes, are the limit: many Logs with small rounds.
//
// Journal records are the frames of an internal write-ahead log (the same
// segment and frame format as above, in the journal's directory), one
// record per frame payload (integers little-endian):
//
//	+--------+------------+================+-------------+===============+
//	| kind   | id length  | id             | position    | data          |
//	| u8     | u16 = n    | n bytes        | u64         | rest          |
//	+--------+------------+================+-------------+===============+
//	 0        1            3                3+n           11+n
//
//	kind 1  write:    data is the bytes the Log wrote at position (whole
//	                  frames, within one segment)
//	kind 2  truncate: the Log's end became position (no data)
//	kind 3  forget:   the Log's earlier records no longer apply (no data)
//
// id is Options.JournalID (by default the Log's Dir, cleaned): it must be
// stable across restarts and unique among the journal's Logs.
//
// What stays as without a journal: a roll still fdatasyncs the old segment
// and creates the new one durably (header, file and directory synced), so
// every segment but the active one is durable by itself. TruncateAfter
// appends a truncate record and waits until it is durable before it
// touches any file, then removes and truncates as usual and fdatasyncs the
// segment. Close fdatasyncs the active segment.
//
// Replay. Open of a Log with a journal first replays the journal's records
// for its id, in journal order, onto its segment files, then recovers as
// usual. The records fold into what they leave: a write at p, and a
// truncate to p, drop every byte at or past p (the Log's end was p when
// the record was made), forget drops everything; the writes left are
// written at their positions (into the segment whose start is the largest
// at or below the position; bytes below the first segment, deleted by
// retention, are skipped); if the last record is a truncate, the log is
// cut there (the segments starting past it removed, last first, each
// removal made durable, and the segment holding it truncated). Every file
// changed is fdatasynced before the Log opens. Replay is idempotent: a crash
// during it, then a second replay, give what one gives. A truncate record
// followed by a write record does not cut: the write was made after the
// truncation's own fdatasync, so the bytes past the last write are the
// Log's own, and recovery judges them as for any unsynced tail (damage
// past what the replay restored is truncated with a warning, not an error).
//
// Trimming. Once SegmentSize bytes of records were appended since the last
// checkpoint, the journal checkpoints: it notes its end p, asks every Log
// registered with it to fdatasync its active segment (on the Log's writer,
// between two rounds: one fdatasync, appends are not held up longer), and
// then deletes its segments lying wholly before p. Records of an id that
// no open Log has (a Log not opened yet since the node started, or closed
// after a failure) stay: trimming stops at the first of them. A Log closed
// cleanly has synced its segment, and the journal forgets its records. A
// Log deleted for good must be forgotten with Journal.Forget, or its
// records keep the journal from trimming (and a new Log with the same id
// would replay them).
//
// What replay assumes: the journal holds every record since the last
// checkpoint that all of its id's Logs took part in; every byte before
// those records is durable in its segment (synced by a checkpoint, a roll,
// a truncation or Close); segment files are removed only by retention
// (below every record's position), by TruncateAfter (after its durable
// record), or by replay itself; a Log's directory is not deleted and
// recreated under the same id without Forget.
//
// Errors: a failed or stalled journal sync fails the journal (sticky,
// never retried) and every Log with a round waiting for it, with the IO
// error or ErrStorageStalled; the journal's SyncTimeout bounds the Logs'
// commits. Only SyncAlways Logs take a journal, and not with a SyncGroup.
// Close the Logs first, then the journal; the journal's Close, as a Log's,
// returns promptly under a stalled sync.
//
// # Failure
//
// Every sync and every segment write has a deadline, Options.SyncTimeout.
// One still blocked past it fails the Log at once, while it is still
// blocked: every waiting and every later call returns ErrStorageStalled. A failed write (ENOSPC,
// EIO, a short write) or a failed sync also fails the Log, with the IO error
// wrapped. Failure is sticky: Err reports it, the Log never retries a sync on
// the same file (after a failed fsync the kernel may have dropped the dirty
// pages, and a second fsync would report success), and nothing is written
// after it. The caller's way out is Close and Open again, which recovers from
// what is on disk. A frame that was only partly written is never returned by
// a read (reads stop at WrittenEnd) nor kept by recovery (its checksum fails).
//
// A caller whose ctx ends gets ctx's error, wrapped; the frame it enqueued is
// still written (positions are dense), the Log stays consistent.
//
// # Recovery
//
// Open lists the segments. Every segment but the last was synced before the
// Log rolled to the next one (whatever the Durability), so its length is
// trusted and it is not read; its frames are verified when they are read.
// The last segment is scanned, unless a clean-shutdown marker written by
// Close says it ends exactly where it did at Close. Scanning stops at the
// first frame that is not whole and valid:
//
//   - if no valid frame follows it in the segment, it is the torn tail of a
//     write that never completed: the segment is truncated there (logged);
//   - if a valid frame follows it, a frame that was once written is damaged:
//     Open returns a *CorruptError (errors.Is ErrCorrupt) with the segment
//     and offset, and never silently drops data. With SyncInterval or
//     SyncNever, where a crash can lose pages in the middle of the unsynced
//     tail, the segment is truncated at the damage instead, with a warning.
//
// Reads verify every frame's checksums and return a *CorruptError on damage.
//
// # Files
//
// Open creates the Log's directory if need be, durably (MkdirAll: each
// parent that gained an entry is synced). A Log's directory holds its
// segments and, between Close and the next Open, the marker:
//
//	00000000000000000000.wal   segment whose first frame is at Pos 0
//	00000000000067108864.wal   segment whose first frame is at Pos 67108864
//	clean                      clean-shutdown marker (see below)
//
// Other files may share the directory; the Log owns the names ending in
// ".wal" and the names "clean" and "clean.tmp".
//
// A segment is named by the Pos of its first frame (%020d.wal) and starts
// with a 24-byte header; its frames follow back to back. A segment rolls
// (a new one is created) when the next frame would take it past
// Options.SegmentSize; a frame is never split across segments, and a frame
// larger than SegmentSize gets a segment of its own.
//
//	segment file:
//	+--------------------+-----------+-----------+-------------+-------+-----
//	| magic "RLOGWAL\0"  | version   | reserved  | start Pos   | frame | ...
//	| 8 bytes            | u32 = 1   | u32 = 0   | u64         |       |
//	+--------------------+-----------+-----------+-------------+-------+-----
//	 0                    8           12          16            24
//
// A frame's file offset is 24 + (Pos - start Pos). Each frame is a 16-byte
// header and the payload (all integers little-endian):
//
//	frame at Pos p:
//	+-------------+-------------+---------------------+=================+
//	| length  u32 | hsum    u32 | sum             u64 | payload         |
//	+-------------+-------------+---------------------+=================+
//	 0             4             8                     16    16 + length
//
//	sum    = xxhash64(payload)
//	hsum   = uint32(xxhash64(p as u64 || length as u32 || sum as u64)) | 1
//
// The checksum is xxhash64 (github.com/cespare/xxhash/v2). hsum binds the
// header to the frame's position, so a stale frame left at another position
// is never taken for a valid one, and it lets recovery test each byte offset
// cheaply when it looks for valid frames after damage. hsum always has its
// low bit set: a zeroed region (a hole left by a crash) never decodes as a
// valid frame, not even as an empty one.
//
// The clean-shutdown marker (written by Close with WriteFileAtomic, removed
// durably by Open before anything is written):
//
//	+--------------------+-----------------+-----------------+-------------------+
//	| magic "RLOGCLN\0"  | last seg start  | last seg size   | xxhash64 of [0,24)|
//	| 8 bytes            | u64             | u64             | u64               |
//	+--------------------+-----------------+-----------------+-------------------+
//	 0                    8                 16                24                  32
//
// # File systems
//
// All IO goes through the FS interface. OSFS is the real one. MemFS keeps
// files in memory and simulates a crash (only synced bytes and synced
// directory entries survive, optionally with a torn last write). FaultFS
// fails chosen operations (ENOSPC, EIO, short writes); StallFS blocks syncs
// until released. Each implements FSSyncer, the one-flush-for-many-files
// capability a SyncGroup uses. The test file systems are exported for the tests of the
// packages built on wal.
//
// # Caveats
//
//   - A Log is opened by one process at a time; nothing locks the directory.
//   - A Log keeps every segment file open (one descriptor each): size
//     SegmentSize so that the log's length over it stays modest.
//   - The FS calls of reads (ReadAt, Reader) have no deadline; a stalled disk
//     that blocks reads blocks them.
//   - Payloads handed to Enqueue are copied; a payload returned by ReadAt is
//     the caller's buf, one returned by a Reader is valid until its next call.
//   - TruncateAfter and DeleteBefore are not meant to race with readers of
//     the positions they drop: such a read returns the dropped frame or
//     ErrOutOfRange, never garbage.
//   - Close returns promptly even while a sync or write is stalled; the
//     writer goroutine, blocked in the syscall, exits when the syscall
//     returns (Done reports it). An OS call that never returns keeps that
//     one goroutine and its files for the life of the process.
package wal
