// Package replication keeps the replicas of each partition in step, with
// Kafka's protocol: one leader per partition and leader epoch (assigned by
// the controller in package meta), followers that copy its log, an in-sync
// replica set (ISR) that the controller changes at the leader's request, and
// a high watermark below which records are committed.
//
// # Using a Manager
//
// One Manager per node, beside its meta.Node, sharing the node's transport
// through internal/mux:
//
//	m, err := replication.Open(replication.Config{ID: id, Meta: node,
//		Replication: mx.Sender(mux.TagReplication), Forward: mx.Sender(mux.TagForward),
//		Dir: dir})
//	mx.Handle(mux.TagReplication, m.HandleReplication)
//	mx.Handle(mux.TagForward, m.HandleForward)
//	base, last, err := m.Append(ctx, "orders", 0, records, replication.AcksAll)
//	res, err := m.Read(ctx, "orders", 0, base, replication.ReadOptions{MaxWait: time.Second})
//	...
//	m.Shutdown(ctx) // controlled shutdown: leaderships move first, and their new leaders push to it
//	m.Close()
//
// The Manager watches the metadata: it opens a replica (a log.Log in
// Dir/<topic>-<topic ID>-<partition>) for every partition assigned to this
// node, makes it leader or follower as the partition record says, and
// deletes a replica's files when its topic is deleted. An EventResync is
// handled by diffing against the State it carries; a topic missing from
// it counts as deleted only if it was created at or before that State's
// index (its ID), since the State may be older than the one an Append
// already used.
//
// Once per start, a sweep removes the replica directories under Dir that
// no replica of this node will open again: those of topics deleted while
// it was down (or while it was stopping: after its metadata applied the
// deletion and before the replica was removed) and those of partitions
// not assigned to it. It waits (without blocking Open, retrying until
// Close) for a meta Barrier, so that it decides on a linearizable State,
// and removes a directory only on facts no later State undoes: its topic
// ID (the raft index that created the topic, never reused) is at or below
// the State's index and the State holds no topic of that ID, or the topic
// lives and the partition's replicas leave this node out. A directory a
// replica has open is left to the watch loop. With Config.Journal the
// replica's journal id is forgotten (wal.Journal.Forget) before its files
// are removed, here and when a topic is deleted while the node runs: a
// crash between the two leaves a directory the next sweep removes, never
// journal records of a directory gone for good, which would keep the
// journal from trimming. Each removal is logged (Info).
//
// Quarantined directories (<replica dir>.corrupt-<unix ns>, see
// Failure) are kept for inspection while their partition's replica
// lives here: they hold no journal record and no name a replica could
// take, so they block nothing; the sweep lists them in one warning at
// each start. They are removed with the replica when it is removed for
// good (the topic deleted, the partition no longer assigned here), at
// once or by the next sweep: deleting a topic deletes its data, that of
// a replica whose open failed included.
//
// # Guarantees
//
//   - Offsets of a partition are dense from 0; every replica's log is a
//     byte-for-byte copy of its leader's below the high watermark.
//   - AcksAll returns once the high watermark passed the batch while the
//     ISR had at least MinInSyncReplicas members: every ISR member holds it
//     (durably under wal.SyncAlways), so no clean election loses it.
//     AcksLeader returns once the leader holds it durably; AcksNone at once.
//   - An Append is written at most once, whatever the retries (below).
//   - Reads never return a record at or above the high watermark the
//     serving replica knows.
//   - A leader whose epoch is superseded cannot acknowledge AcksAll: its
//     followers answer its pushes with the newer epoch, and it stops; an
//     isolated leader's followers never confirm anything, so its high
//     watermark cannot pass what they held. A write that rests on the
//     leader alone (AcksLeader, or AcksAll with the ISR down to the
//     leader) is acknowledged only while the node is in touch with the
//     controller (meta.Node.InSession: the controller acknowledged a
//     heartbeat the node sent within SessionTimeout), so a leader cut off
//     (either way) for longer, which the controller may have fenced, stops
//     acknowledging writes before it can have been fenced.
//   - Nothing polls: pushes, acks, metadata events and log waiters drive
//     everything. One timer per Manager (an eighth of ReplicaLagTime,
//     10–250 ms) does retransmissions and ISR changes, and starts
//     retention (which runs beside it: it waits for the replica's reads);
//     an idle replica costs a few comparisons per tick.
//
// # Replication protocol: push, windowed, epoch-matched
//
// The leader pushes; followers acknowledge. A leader round takes every
// batch queued for the partition, gives them offsets, pushes them to every
// follower that is caught up (before the leader's own write, so that the
// followers' writes and syncs overlap its own), and writes them to its log
// as one wal write (one sync: group commit). Up to 32 pushes (8 MiB) per
// follower are in flight. A follower that is behind gets catch-up pushes
// read back from the leader's log. Pushes of many partitions to one node
// share a message: each node has one sender goroutine per peer that sends
// whatever accumulated as one message per burst.
//
// A follower appends each push's raw batches unchanged (contiguous pushes
// share one append and one sync) and acknowledges with its log end offset,
// counting only what its log acknowledged (synced under SyncAlways), its
// latest epoch and its high watermark. The leader's high watermark is the
// smallest log end over the ISR, its own durable end included, and does
// not move while the ISR is smaller than MinInSyncReplicas. ISR members the
// metadata shows draining (controlled shutdown) are left out of both: a
// draining node leads nothing until it registers again, and registering
// removes it from every ISR, so no election can pick it; without this a
// handed-over leadership would commit nothing until the stopped node is
// shrunk out. The high watermark reaches the
// followers in the next push or in a push of its own, resent until
// acknowledged. A follower takes the leader's high watermark only up to
// what it has confirmed agrees with that leader's log.
//
// Epoch matching (Kafka's OffsetsForLeaderEpoch, driven by the leader): a
// new leader begins its epoch in its log and probes its followers; a
// follower answers a probe (or, unasked, a leader it learns of) with its
// latest epoch E and log end L. The leader sends from
// T = min(L, end of E in its own log) and tells the follower to truncate
// to T first if it holds more (the first push of a match is sent even
// when empty: it also tells the follower that its log agrees with the
// leader's below T). If the leader's log lacks E (a leader of an epoch in
// between wrote records this one never had), its answer is the end of an
// earlier epoch E' < E, and the follower's records of epochs after E' may
// start below it: the leader then sends E' instead (Kafka's KIP-279
// follower step), the follower truncates to min(T, its own end of E') and
// answers "mismatch" with its new (E, L), and the leader matches again;
// meanwhile the follower counts as unmatched (nothing is sent to it, the
// high watermark waits). If T is below the leader's log start (retention
// removed what the follower lacks, or the replica is new), the leader
// sends from its log start S instead and the follower starts its log over,
// empty, at S (log.ResetTo; Kafka's truncate-fully-and-start-at). A push
// that does not continue the
// follower's log (a lost push) is answered "mismatch" with the same
// (E, L), and the leader rematches; so is a data push that reaches a
// follower before the first push of its match (that one was lost): until
// it, the follower does not know where its log agrees with the leader's,
// and a push that continues its log by offset may continue records of an
// older epoch the leader never had. Each match starts a new generation;
// answers of older generations are ignored, except a hello of generation
// 0: a follower sends one unasked when it starts following an epoch (a
// restarted node, say), having forgotten where its log agrees, and is
// matched again even if the leader had matched it; probes carry
// generations from 1. That hello is answered by the follower's worker, in
// order after the pushes of earlier epochs it is still applying (a
// truncation, say) and once the appends before it are durable, so that it
// describes the log the leader's match will find. A follower that does
// not know where its log agrees answers a high-watermark push with
// "mismatch" (its hello was lost), which rematches it too, and drops the
// rest of that generation (the rematch starts from the log it answered
// with). A leader sends no
// high-watermark push to a follower before the first push of its match,
// which carries the high watermark itself. A follower with pushes in
// flight and no progress for its resend timeout is rematched from what it
// acknowledged (lost pushes or acks). That timeout is four ticks, or
// twice the round trip of its last answer if longer (at most twice
// ReplicaLagTime), and doubles when an answer to pushes given up arrives
// late (Karn's rule): a slow follower is not resent to forever, a lost
// push is resent as soon as before.
//
// The leader asks the controller (meta.AlterISR, with its leader and
// partition epochs, one request at a time) to shrink an ISR member that
// has not caught up for ReplicaLagTime and to add back a follower that
// holds everything below the high watermark and everything before the
// leader's epoch began, and was caught up within ReplicaLagTime. An idle
// follower that holds all the leader has is caught up. The leader never
// shrinks the ISR below MinInSyncReplicas: it keeps the lagging members
// with the longest logs, and refuses AcksAll as if the ISR were short.
// Each of them holds every committed record (the high watermark cannot
// pass it), so it stays eligible: an ISR down to the leader alone would
// leave, after the leader's crash, only the leader to elect, and under
// SyncNever or SyncPeriodic it comes back without its unsynced records,
// committed ones among them, which the followers it removed still hold
// (the data loss of Kafka's KIP-966). While a request that adds a follower is on its way, the high
// watermark counts that follower too (Kafka's maximal ISR): the controller
// may apply the addition and elect the follower (a preferred replica gets
// its leadership back at once) before the leader learns of it. A request
// refused for good drops it; one whose outcome stays unknown counts it
// for twice the request's timeout at most. It asks to add back only nodes
// the metadata shows eligible (not fenced, draining or unhealthy): the
// controller refuses a request that adds one that is not, whole, and a
// fenced old leader may well follow, caught up, until it registers again
// (Kafka's KIP-841).
//
// # Forwarding and idempotence
//
// Append on any node goes through a producer for the partition on that
// node: the batch is encoded there (zero timestamps get that node's
// clock), with the node's ID as producer ID, its meta incarnation (15
// bits) as producer epoch and a per-partition sequence. The producer sends
// it to the leader the local metadata names: the local replica, or the
// leader node over mux.TagForward, coalesced with other forwarded appends
// to that node into one message per burst. A batch is sent only while
// fewer than 64 batches submitted before it to that partition on that
// node are unanswered (a window by submission order, see dedup.go), and
// at most 4 of its batches are in flight at once. The Appends submitted
// while 4 are in flight wait, and the first of them to go takes the
// others along: their batches are joined into one (log.JoinBatches), sent
// and deduplicated as one under the first one's sequence, and each
// Append is answered with its own records' offsets. So many concurrent
// single-record Appends to a partition become a few batches, as a Kafka
// producer's records do while its requests are in flight, with no timer
// (no linger): a lone Append goes at once. A caller that gives up on a
// joined Append leaves the batch to the others. A
// leader change (metadata event), a "not leader"/"retry" answer (with the
// answering node's newer leader, if it knows one) or an answer overdue for
// four ticks (doubling, at most twice ReplicaLagTime) sends it again, with
// a new attempt number; answers to older attempts are ignored. A leader
// asked for an epoch it has not learned yet parks the batch until it does;
// one asked for an older epoch than its own answers "not leader" with its
// epoch, and the batch is sent again at once. An AcksAll batch answered
// "not enough in-sync replicas" is sent again until the shortage has
// lasted ReplicaLagTime (one clock per partition producer, cleared by an
// AcksAll success or by metadata showing the ISR back), as after a leader
// change, when followers catch up and rejoin.
//
// Every replica, leader or follower, remembers the last 128 batches of
// each producer from the batch headers it appends, and persists that
// memory (a producer snapshot every MiB of batches and at a clean stop,
// removed before a truncation); a reopened replica rebuilds it from its
// snapshot and the log after it (without one, from the log's last 4 MiB).
// A leader answers a batch it already holds (same sequences and
// same checksum: every attempt sends the same bytes) with its first
// offsets instead of writing it again, so a retry after a lost answer or a
// leader change is never written twice; other data under a sequence it
// holds is refused, never answered with the held batch's offsets; a batch
// already committed is answered so even while the ISR is short. A retry
// older than everything remembered is refused rather than risked. Gaps in
// the sequence are accepted (concurrent Appends are not ordered with each
// other).
//
// # Failure
//
// A replica whose log fails (wal.ErrStorageStalled past SyncTimeout, an IO
// error) fails the affected appends with that error, takes no more writes
// and no more pushes, and the Manager calls meta.SetUnhealthy(true) once:
// the controller moves its leaderships to healthy ISR members, and the
// leader of its follower replicas shrinks them out. The replica stays
// failed until the node restarts. The affected appends are those of this
// node's producers: an append forwarded here from a healthy node is
// answered "storage stalled", and that node's producer waits (within the
// caller's ctx) for the leadership to move and sends it to the new
// leader, unless the ISR holds no other eligible member, when it fails
// with wal.ErrStorageStalled.
//
// A replica whose log.Open fails with wal.ErrCorrupt (recovery found
// corruption before valid frames) is never served: its files are moved to
// a directory beside it (<dir>.corrupt-<unix ns>, logged as an error),
// and the replica starts empty and catches up from its leader like a new
// one. It leads nothing until a leader has added it back to the ISR after
// this node registered; a partition whose only ISR member it is stays
// offline (no unclean election). Corruption that Open does not see (a
// sealed segment, or any segment after a clean shutdown: Open trusts its
// indexes) is found by the first read of the damaged range (a consumer's,
// a forwarded one, or a leader's catch-up read): the read fails with
// wal.ErrCorrupt, the replica fails as on a storage failure (no more
// writes; the node reports itself unhealthy, so its leaderships move where
// another ISR member can take them) and leaves a file named "corrupt" in
// its directory, and the next start treats the log as Open-corrupt.
//
// # Wire format
//
// Every message, after the mux tag, is a version byte (2) and items. A
// message of another version is dropped whole: nodes of different wire
// versions do not replicate to each other (there is no negotiation yet).
//
//	message: +-----+------+------+-----+
//	         | 0x02| item | item | ... |
//	         +-----+------+------+-----+
//	item:    +------+------------+--------------------+
//	         | kind | length u32 | body (length bytes)|
//	         +------+------------+--------------------+
//
// Integers in bodies are varints (encoding/binary: zig-zag for signed, u
// for unsigned); a trailing "bytes" field is the rest of the body.
//
//	push (1, leader → follower, TagReplication):
//	    topicID u | partition | epoch | gen u | flags u8 | prevEnd | hw | [matchEpoch] | batches
//	    flags: 1 truncate to prevEnd first, 2 probe, 4 high watermark only,
//	    8 truncate to prevEnd and to the follower's end of matchEpoch, then
//	    answer "mismatch" (matchEpoch is there only with flag 8),
//	    16 (with 1) start the log over, empty, at prevEnd
//	ack (2, follower → leader, TagReplication):
//	    topicID u | partition | epoch | gen u | status u8 | lastEpoch | logEnd | hw
//	    status: 0 ok, 1 hello, 2 mismatch, 3 stale epoch (epoch is the newer one)
//	append (3, producer node → leader, TagForward):
//	    reqID u | attempt u | topicID u | partition | epoch | acks i8 | batch
//	append answer (4, TagForward):
//	    reqID u | attempt u | code u8 | leader u | epoch | base | last
//	read (5, reader node → leader, TagForward):
//	    reqID u | topicID u | partition | offset | maxBytes | maxRecords | maxWait ns
//	read answer (6, TagForward):
//	    reqID u | code u8 | leader u | hw | logStart | batches
//
// batches are log batches as package log stores them; a forwarded append's
// batch has its producer fields set, and the leader stamps its base offset
// and epoch (outside the batch checksum). Decoders check every length
// before slicing, allocate nothing, and ignore items of unknown kinds.
//
// # Caller's duties
//
//   - Register HandleReplication and HandleForward before the transport
//     starts; give every node the same ReplicaLagTime, about the cluster's
//     SessionTimeout.
//   - Call Shutdown before Close for a controlled shutdown.
//   - Close the Manager before its meta.Node.
//
// # Caveats
//
//   - The sweep needs a metadata quorum: a node that restarts cut off
//     from it keeps the directories of deleted topics (and its journal
//     their records) until it reaches one. Quarantines of live replicas
//     stay until removed by hand, as does a moved-aside journal
//     (journal.corrupt-<ns>). Entries under Dir the sweep does not
//     recognise as replica directories are never touched.
//   - The journal cannot list the ids it holds records of: records of a
//     replica whose directory vanished without a Forget (removed by hand,
//     or by a version of this package that removed the files first) keep
//     the journal from trimming. After a Close that returned nil every
//     replica log holds its data in its own files, synced: Dir/journal
//     may then be removed, and the next start begins a new one.
//   - A replica whose read found its log damaged is rebuilt only at the
//     node's next start; until then it serves nothing, and its node, being
//     unhealthy, leads nothing another ISR member can lead.
//   - A node restarted again before its emptied replica caught up no
//     longer knows it was emptied (the mark is not persisted).
//   - The producer epoch is the incarnation modulo 2^15, compared modulo
//     the wrap (an epoch less than 2^14 ahead is newer): a replica that
//     last saw a node's batches more than 16383 restarts of it ago may
//     refuse its next ones as fenced, until a newer epoch reaches it.
//   - Under wal.SyncNever and SyncInterval a follower acknowledges data its
//     OS has not synced: an OS crash of a majority can lose acknowledged
//     records, as the durability policy says. A follower that kept more
//     than its new leader then truncates to the leader's end, high
//     watermark included (log.TruncateBelowHighWatermark), and rejoins
//     the ISR. Under SyncAlways such a truncation would mean an
//     acknowledged record was lost: the follower refuses it and fails
//     (logged once, reported unhealthy) rather than retrying for ever.
package replication
