package replication

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// pkey names a partition: the topic's ID (not its name: a topic deleted
// and created again is another topic) and the partition number.
type pkey struct {
	topicID   uint64
	partition int32
}

type role uint8

const (
	roleNone     role = iota // no leader known, or leader 0 (offline)
	roleFollower             // following mu.leader in mu.epoch
	roleLeader               // leading mu.epoch
)

// appendReq is one batch on its way into a leader's log, from a local
// producer (call set) or a remote one (from, reqID, attempt).
type appendReq struct {
	batch    []byte // encoded log batch; the leader stamps offset and epoch into its copy
	pid      int64
	pepoch   int16
	firstSeq int32
	lastSeq  int32
	count    int32
	acks     Acks
	epoch    int32 // the leader epoch the producer believed current

	call    *call // local producer
	from    uint64
	reqID   uint64
	attempt uint64

	base, last int64 // assigned offsets

	queuedAt, writtenAt int64 // mono times, for the stage statistics
}

// answer is an outcome to deliver to a producer once the replica's lock
// is released (a local producer's completion may call back into replicas).
type answer struct {
	req        *appendReq
	code       byte
	leader     uint64
	epoch      int32
	base, last int64
}

type answers []answer

func (a *answers) add(req *appendReq, code byte, leader uint64, epoch int32) {
	*a = append(*a, answer{req: req, code: code, leader: leader, epoch: epoch, base: req.base, last: req.last})
}

func (a *answers) ok(req *appendReq) {
	*a = append(*a, answer{req: req, code: codeOK, base: req.base, last: req.last})
}

// deliver sends the answers; call it without any replica lock held.
func (a answers) deliver(m *Manager) {
	for _, x := range a {
		if c := x.req.call; c != nil {
			c.p.complete(c, m.cfg.ID, x.req.attempt, x.code, x.leader, x.epoch, x.base, x.last)
			continue
		}
		m.peer(x.req.from).appendResp(&appendResp{reqID: x.req.reqID, attempt: x.req.attempt,
			code: x.code, leader: x.leader, epoch: x.epoch, base: x.base, last: x.last})
	}
}

// replica is this node's replica of one partition: its log and, by role,
// the leader's or the follower's state. Its worker goroutine (at most one at
// a time, started on demand by kickLocked and exiting when idle) does the
// log writes: leader rounds and catch-up reads, or follower appends and
// truncations. Handlers and the Manager's loops only change state under mu
// and queue items.
type replica struct {
	m     *Manager
	key   pkey
	topic string
	dir   string
	log   *log.Log
	// retain: the topic has a retention bound; the tick loop enforces it,
	// on a goroutine of its own (retaining is set while it runs): a
	// retention waits for the replica's reads, which have no deadline.
	retain    bool
	retaining atomic.Bool

	// badPush is the leader epoch and generation whose push this follower
	// last answered "mismatch" (ok set): later pushes of that generation
	// are dropped, whichever step takes them, until the leader rematches
	// with a new one. Owned by the worker (one runs at a time).
	badPush struct {
		ok    bool
		epoch int32
		gen   uint32
	}

	// snapSem (capacity 1) orders the writes and removals of the producer
	// snapshot (see snapIO). Taken before mu, never under it.
	snapSem chan struct{}

	mu struct {
		sync.Mutex
		closed  bool
		failed  error // sticky storage failure: no more writes
		part    meta.Partition
		minISR  int
		role    role
		epoch   int32  // the epoch of role
		leader  uint64 // with roleFollower
		working bool   // a worker goroutine runs

		// leader
		ready      bool  // BeginEpoch done, followers probed
		superseded bool  // a follower knows a newer epoch: acknowledge nothing
		ledSince   int64 // mono time leadership began
		epochStart int64 // log end when the epoch began
		nextOffset int64 // offsets handed out
		queue      []*appendReq
		parked     []*appendReq // for an epoch this replica has not learned yet
		hwWaiters  []*appendReq // AcksAll, written, waiting for the high watermark
		// durWaiters: AcksLeader retries of batches in a round still being
		// written, answered when a round's end makes them durable.
		durWaiters []*appendReq
		inflight   []*inflight   // appends queued to the log and answers after them, in order
		completing bool          // a completer goroutine works through inflight
		progress   chan struct{} // closed by the completer when it finished an item
		followers  map[uint64]*fstate
		isrBusy    bool // an AlterISR is in flight
		// isrFloor: lagging followers stay in the ISR only because
		// removing them would leave it below MinInSyncReplicas (see
		// maybeAlterISRLocked): the ISR counts as short for AcksAll.
		isrFloor bool
		// isrAdding are the members an AlterISR asked at partition epoch
		// isrAddingPE (mono time isrAddingAt) adds: the high watermark
		// counts them until the metadata moves past that epoch (see
		// pendingAddsLocked).
		isrAdding   []uint64
		isrAddingPE int32
		isrAddingAt int64

		// follower
		fq     []pushItem
		agreed int64 // the log agrees with the leader's below it (-1: not known yet)
		heard  int32 // the latest epoch whose leader pushed to this replica (Shutdown waits for it)
		// fresh: the log was found corrupt and restarted empty; the replica
		// leads nothing until a leader added it back to the ISR.
		fresh bool

		producers map[int64]*producerState
		// The producer snapshot (see prodsnap.go): bytes recorded since
		// the last one, the one queued and the generation it was taken
		// in (dropSnapshot bumps snapGen), and whether a writer runs.
		snapDue        int
		snapPending    []byte
		snapPendingGen uint64
		snapGen        uint64
		snapWriting    bool
		snapDirty      bool // the table changed since the snapshot on disk (close writes one)
	}
}

// replicaDir is the directory of a partition replica under Dir.
func replicaDir(base, topic string, topicID uint64, partition int32) string {
	return filepath.Join(base, fmt.Sprintf("%s-%d-%d", topic, topicID, partition))
}

func (m *Manager) openReplica(topic string, key pkey, cfg meta.TopicConfig) (*replica, error) {
	dir := replicaDir(m.cfg.Dir, topic, key.topicID, key.partition)
	if err := wal.MkdirAll(m.cfg.FS, dir); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	opts := log.Options{
		WAL: wal.Options{FS: m.cfg.FS, Dir: dir, SegmentSize: m.cfg.SegmentSize,
			Durability: m.cfg.Durability, SyncInterval: m.cfg.SyncInterval, SyncTimeout: m.cfg.SyncTimeout,
			Journal: m.journal, JournalID: filepath.Base(dir), SyncGroup: m.cfg.SyncGroup},
		MaxBatchBytes:  m.cfg.MaxBatchBytes,
		RetentionBytes: cfg.RetentionBytes,
		RetentionTime:  cfg.RetentionTime,
		Clock:          m.cfg.Clock,
		Logger:         m.cfg.Logger,
	}
	l, err := log.Open(opts)
	fresh := false
	if err == nil && m.markedCorrupt(dir) {
		// A read found the log damaged where Open does not look (see
		// readFailed): rebuild it as a log Open finds corrupt.
		err = fmt.Errorf("%w: marked corrupt by a read", wal.ErrCorrupt)
	}
	producers := map[int64]*producerState{}
	var readErr error
	var snapCurrent bool
	if err == nil {
		// A replica whose producer table missed batches its log holds
		// would write a retried batch twice once it leads. The tail read
		// may find damage Open does not look for (a sealed segment): that
		// log is rebuilt as a corrupt one. Any other read error fails the
		// replica as a storage error (below).
		if snapCurrent, readErr = m.rebuildProducers(l, dir, producers); errors.Is(readErr, wal.ErrCorrupt) {
			err, readErr = readErr, nil
		}
	}
	if errors.Is(err, wal.ErrCorrupt) && l != nil {
		if cerr := l.Close(); cerr != nil {
			m.cfg.Logger.Warn("replication: closing a log found corrupt", "dir", dir, "err", cerr)
		}
		l = nil
	}
	if errors.Is(err, wal.ErrCorrupt) {
		// Never serve a corrupt log: move it aside and start empty; the
		// replica recovers the partition from its leader.
		q, qerr := m.quarantine(dir)
		if qerr != nil {
			return nil, fmt.Errorf("replication: open %s/%d: %w (moving it aside: %w)", topic, key.partition, err, qerr)
		}
		m.cfg.Logger.Error("replication: replica log corrupt: moved aside, the replica starts empty and recovers from its leader",
			"topic", topic, "partition", key.partition, "moved_to", q, "err", err)
		if ferr := m.forgetJournal(dir); ferr != nil {
			return nil, fmt.Errorf("replication: open %s/%d: %w (forgetting its journal records: %w)", topic, key.partition, err, ferr)
		}
		l, err = log.Open(opts)
		fresh = true
		clear(producers)
	}
	if err != nil {
		return nil, fmt.Errorf("replication: open %s/%d: %w", topic, key.partition, err)
	}
	r := &replica{m: m, key: key, topic: topic, dir: dir, log: l, retain: cfg.RetentionBytes > 0 || cfg.RetentionTime > 0,
		snapSem: make(chan struct{}, 1)}
	r.mu.producers = producers
	r.mu.snapDirty = !snapCurrent && !fresh
	r.mu.fresh = fresh
	r.mu.epoch = -1
	r.mu.heard = -1
	if readErr != nil {
		// The disk failed a read: the replica takes no writes, as after
		// a failed write, and the node reports itself unhealthy so that
		// its leaderships move. It is opened again at the next start.
		var out answers
		r.mu.Lock()
		r.failLocked(fmt.Errorf("replication: %s/%d: reading the log's tail for the producer table: %w",
			topic, key.partition, readErr), &out)
		r.mu.Unlock()
	}
	return r, nil
}

// corruptMarker is the file a replica leaves in its directory when a read
// found its log damaged: the next start moves the log aside and rebuilds
// it from the leader.
const corruptMarker = "corrupt"

// markedCorrupt reports whether the replica directory holds the marker.
func (m *Manager) markedCorrupt(dir string) bool {
	_, err := m.cfg.FS.Stat(filepath.Join(dir, corruptMarker))
	return err == nil
}

// readFailed handles a failed read of the replica's log. Damage (a sealed
// segment's, which log.Open does not check) is a storage failure of the
// replica: it takes no more writes and the node reports itself unhealthy,
// so that its leaderships move where another ISR member can take them and
// it joins no ISR; and it leaves a marker, durably, so that the next start
// moves the log aside and rebuilds it from the leader, as for a log Open
// finds corrupt. Other errors are the caller's.
func (r *replica) readFailed(err error) {
	if !errors.Is(err, wal.ErrCorrupt) {
		return
	}
	r.mu.Lock()
	done := r.mu.failed != nil || r.mu.closed
	r.mu.Unlock()
	if done {
		return
	}
	if merr := wal.WriteFileAtomic(r.m.cfg.FS, filepath.Join(r.dir, corruptMarker), []byte(err.Error())); merr != nil {
		r.m.cfg.Logger.Error("replication: cannot mark a corrupt replica for rebuilding", "topic", r.topic,
			"partition", r.key.partition, "err", merr)
	}
	var out answers
	r.mu.Lock()
	r.failLocked(fmt.Errorf("replication: %s/%d: %w", r.topic, r.key.partition, err), &out)
	r.mu.Unlock()
	out.deliver(r.m)
}

// forgetJournal tells the node's journal, if any, that the replica log in
// dir is gone: its records must never be replayed into a new log there.
func (m *Manager) forgetJournal(dir string) error {
	if m.journal == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.SyncTimeout)
	defer cancel()
	return m.journal.Forget(ctx, filepath.Base(dir))
}

// quarantine moves the files of a replica directory into a new directory
// beside it, named after it, ".corrupt-" and the time, and returns its
// name. The files are kept for inspection; nothing reads them again.
func (m *Manager) quarantine(dir string) (string, error) {
	q := fmt.Sprintf("%s%s%d", dir, quarantineInfix, m.cfg.Clock().UnixNano())
	if err := wal.MkdirAll(m.cfg.FS, q); err != nil {
		return "", err
	}
	names, err := m.cfg.FS.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if err := m.cfg.FS.Rename(filepath.Join(dir, n), filepath.Join(q, n)); err != nil {
			return "", err
		}
	}
	if err := m.cfg.FS.SyncDir(q); err != nil {
		return "", err
	}
	return q, m.cfg.FS.SyncDir(dir)
}

// rebuildBytes is how much of its tail a reopened log without a producer
// snapshot reads to rebuild the producer table. What a producer may still
// retry is its last 2 × maxInFlight - 1 batches (see dedup.go): 4 MiB holds
// them for three producers with batches up to 10 KiB. Past that, only the
// snapshot (prodsnap.go) knows them.
const rebuildBytes = 4 << 20

// rebuildProducers fills producers for a reopened log: from the replica's
// producer snapshot and the log after it, or, without a usable snapshot,
// from the last rebuildBytes of the log. A damaged snapshot is logged and
// ignored. A read of the log that fails stops it, and its error is
// returned (a damaged log's is wal.ErrCorrupt). current reports whether
// the snapshot on disk now holds the table (or the table is empty and
// there is none): a clean stop need not write it again.
func (m *Manager) rebuildProducers(l *log.Log, dir string, producers map[int64]*producerState) (current bool, err error) {
	tail := l.TailStart(rebuildBytes)
	from := tail
	end := l.LogEndOffset()
	offset, snap, err := readProducerSnapshot(m.cfg.FS, dir)
	if err == nil && snap != nil {
		for _, ps := range snap {
			ps.truncate(end) // entries the log lost (its unsynced tail, in a crash)
		}
		err = checkSnapshot(l, snap)
	}
	switch {
	case err != nil:
		m.cfg.Logger.Warn("replication: producer snapshot unusable: rebuilding from the log's tail",
			"dir", dir, "err", err)
		snap = nil
	case snap != nil:
		for id, ps := range snap {
			if len(ps.batches) > 0 {
				producers[id] = ps
			}
		}
		from = max(min(offset, end), l.LogStartOffset(), l.TailStart(maxSnapshotRead))
	}
	// The last rebuildBytes are read in any case, the batches the
	// snapshot holds without being recorded again: Open checks only the
	// last segment's frames, and this read is what finds damage in the
	// segments before it at start (the replica then starts over).
	if err := readProducers(l, min(from, tail), from, producers); err != nil {
		return false, err
	}
	if snap != nil && offset > end {
		// New batches will take the offsets the crash freed: the file
		// must no longer name the lost ones there (see prodsnap.go).
		if err := writeProducerSnapshot(m.cfg.FS, dir, encodeProducerSnapshot(end, producers)); err != nil {
			if rerr := removeSnapshot(m.cfg.FS, dir); rerr != nil {
				return false, fmt.Errorf("replication: replacing a producer snapshot past the log's end: %w", errors.Join(err, rerr))
			}
			return false, nil
		}
		return true, nil
	}
	return snap != nil && offset == end || snap == nil && err == nil && len(producers) == 0, nil
}

// readProducers reads the log from offset from to its end, and records in
// producers the batches that start at or after record. A read that fails
// stops it, and its error is returned.
func readProducers(l *log.Log, from, record int64, producers map[int64]*producerState) error {
	end := l.LogEndOffset()
	buf := make([]byte, 0, 1<<20)
	for from < end {
		b, err := l.ReadBatches(buf[:0], from, end, cap(buf))
		if err != nil {
			return err
		}
		if len(b) == 0 {
			break
		}
		next := recordProducers(producers, b, record)
		if next <= from {
			break
		}
		from = next
	}
	return nil
}

// recordProducersLocked remembers the producer batches in raw (batches as
// stored) and returns the end offset of the last one.
func (r *replica) recordProducersLocked(raw []byte) int64 {
	return recordProducers(r.mu.producers, raw, 0)
}

// recordProducers adds the producer batches in raw (batches as stored)
// that start at or after record to producers, and returns the end offset
// of the last batch in raw.
func recordProducers(producers map[int64]*producerState, raw []byte, record int64) int64 {
	end := int64(-1)
	for rest := raw; len(rest) > 0; {
		b, next, err := log.SplitBatch(rest)
		if err != nil {
			break
		}
		rest = next
		end = b.NextOffset()
		if b.ProducerID() < 0 || b.BaseOffset() < record {
			continue
		}
		ps := producers[b.ProducerID()]
		if ps == nil {
			ps = &producerState{}
			producers[b.ProducerID()] = ps
		}
		first := b.BaseSequence()
		ps.record(b.ProducerEpoch(), seqBatch{firstSeq: first, lastSeq: lastSeqOf(first, b.Count()),
			baseOffset: b.BaseOffset(), lastOffset: b.LastOffset(), crc: batchCRC(b)})
	}
	return end
}

// kickLocked makes sure a worker runs.
func (r *replica) kickLocked() {
	if r.mu.working || r.mu.closed {
		return
	}
	if r.m.spawn(r.work) {
		r.mu.working = true
	}
}

func (r *replica) work() {
	for {
		r.mu.Lock()
		if r.mu.closed || r.mu.failed != nil {
			r.mu.working = false
			r.mu.fq = nil
			r.mu.Unlock()
			return
		}
		if r.mustAwaitLocked() {
			r.awaitRoundLocked()
			if r.m.ctx.Err() != nil {
				r.mu.Lock()
				r.mu.working = false
				r.mu.Unlock()
				return
			}
			continue
		}
		var more bool
		switch r.mu.role {
		case roleLeader:
			more = r.leaderStep()
		case roleFollower:
			more = r.followerStep()
		default:
			r.mu.fq = nil
			r.mu.working = false
			r.mu.Unlock()
			return
		}
		if !more {
			return
		}
	}
}

// mustAwaitLocked reports whether the worker must wait for in-flight
// items before its next step: their number is bounded, and only the work
// that queued them may run beside them (a leader's rounds in its epoch, a
// follower's appends); anything else (beginning an epoch, following after
// leading, leading after following) waits until they are done.
func (r *replica) mustAwaitLocked() bool {
	n := len(r.mu.inflight)
	switch {
	case n == 0:
		return false
	case n >= maxAppendsInFlight:
		return true
	case r.mu.role == roleLeader:
		last := r.mu.inflight[n-1]
		return !r.mu.ready || last.follower || last.epoch != r.mu.epoch
	case r.mu.role == roleFollower:
		return !r.mu.inflight[n-1].follower
	}
	return true
}

// drainLocked waits until nothing is in flight (or the Manager closes).
// Called with mu held; returns with it held.
func (r *replica) drainLocked() {
	for len(r.mu.inflight) > 0 && r.m.ctx.Err() == nil {
		r.awaitRoundLocked()
		r.mu.Lock()
	}
}

// update applies a partition record from the metadata.
func (r *replica) update(part meta.Partition, cfg meta.TopicConfig) {
	var out answers
	r.mu.Lock()
	if r.mu.closed || part.LeaderEpoch < r.mu.epoch {
		r.mu.Unlock()
		return
	}
	r.mu.part = part
	r.mu.minISR = cfg.MinInSyncReplicas
	self := r.m.cfg.ID
	if r.mu.fresh && r.m.isRegistered() && part.Leader != self && part.Leader != 0 && slices.Contains(part.ISR, self) {
		r.mu.fresh = false // caught up: a leader added it to the ISR after this node registered
		r.m.cfg.Logger.Info("replication: emptied replica recovered: back in the ISR", "topic", r.topic,
			"partition", r.key.partition, "leader", part.Leader, "isr", part.ISR)
	}
	if part.Leader == self && !r.m.isRegistered() {
		// A record from before this node's restart: its registration will
		// move or re-epoch the leadership; lead nothing until then.
		part.Leader = 0
	}
	if part.Leader == self && r.mu.fresh {
		// An emptied replica must not lead: the partition stays offline
		// (no unclean election) until another ISR member can lead.
		r.m.cfg.Logger.Error("replication: refusing to lead with a log emptied after corruption",
			"topic", r.topic, "partition", r.key.partition, "epoch", part.LeaderEpoch)
		part.Leader = 0
	}
	switch {
	case part.LeaderEpoch > r.mu.epoch || r.mu.role == roleNone && part.Leader != 0:
		// Leadership changes are rare and explain most stalls: logged.
		r.m.cfg.Logger.Info("replication: partition leader", "topic", r.topic, "partition", r.key.partition,
			"leader", part.Leader, "epoch", part.LeaderEpoch, "isr", part.ISR, "fresh", r.mu.fresh)
		if part.Leader == self {
			r.becomeLeaderLocked(part.LeaderEpoch, &out)
		} else {
			r.becomeFollowerLocked(part.Leader, part.LeaderEpoch, &out)
		}
	case r.mu.role == roleLeader:
		// The ISR changed: the high watermark may move, AcksAll may no
		// longer be possible.
		if len(part.ISR) < r.mu.minISR {
			r.failHWWaitersLocked(&out)
		}
		r.advanceHWLocked(&out)
	}
	r.mu.Unlock()
	out.deliver(r.m)
}

func (r *replica) becomeLeaderLocked(epoch int32, out *answers) {
	r.mu.role, r.mu.epoch, r.mu.leader = roleLeader, epoch, r.m.cfg.ID
	r.mu.ready, r.mu.superseded, r.mu.isrFloor = false, false, false
	r.mu.followers = map[uint64]*fstate{}
	for _, id := range r.mu.part.Replicas {
		if id != r.m.cfg.ID {
			r.mu.followers[id] = &fstate{}
		}
	}
	parked := r.mu.parked[:0]
	for _, q := range r.mu.parked {
		if q.epoch <= epoch {
			r.mu.queue = append(r.mu.queue, q)
		} else {
			parked = append(parked, q)
		}
	}
	r.mu.parked = parked
	r.kickLocked()
}

func (r *replica) becomeFollowerLocked(leader uint64, epoch int32, out *answers) {
	r.failLeaderWorkLocked(out, leader, epoch)
	r.mu.role, r.mu.epoch, r.mu.leader = roleFollower, epoch, leader
	r.mu.isrFloor = false
	r.mu.agreed = -1
	if leader == 0 {
		r.mu.role = roleNone
	}
	r.mu.ready, r.mu.superseded, r.mu.followers = false, false, nil
	if leader != 0 && r.mu.failed == nil {
		// Greet the leader with a hello of generation 0, as if it had
		// probed: the worker answers it in order, after the steps it is
		// running or will run first (an older leader's truncation, say)
		// and once the appends before it are durable, so that the log it
		// describes is the one the leader's match push will find.
		r.mu.fq = append(r.mu.fq, pushItem{topicID: r.key.topicID, partition: r.key.partition, epoch: epoch,
			flags: pushProbe, arrived: r.m.mono()})
		r.kickLocked()
	}
}

// failLeaderWorkLocked answers everything waiting on this replica as a
// leader with "not leader", naming the leader of epoch: the producers
// retry with that leader, which deduplicates what this one wrote.
func (r *replica) failLeaderWorkLocked(out *answers, leader uint64, epoch int32) {
	for _, q := range r.mu.queue {
		out.add(q, codeNotLeader, leader, epoch)
	}
	for _, q := range r.mu.hwWaiters {
		out.add(q, codeNotLeader, leader, epoch)
	}
	for _, q := range r.mu.durWaiters {
		out.add(q, codeNotLeader, leader, epoch)
	}
	r.mu.durWaiters = nil
	parked := r.mu.parked[:0]
	for _, q := range r.mu.parked {
		if q.epoch <= epoch {
			out.add(q, codeNotLeader, leader, epoch)
		} else {
			parked = append(parked, q)
		}
	}
	r.mu.queue, r.mu.hwWaiters, r.mu.parked = nil, nil, parked
}

// maxParked bounds the requests a replica holds for an epoch it has not
// learned yet.
const maxParked = 4096

// enqueue takes a batch for this replica as leader.
func (r *replica) enqueue(q *appendReq) {
	var out answers
	r.mu.Lock()
	switch {
	case r.mu.closed:
		out.add(q, codeRetry, 0, 0)
	case r.mu.failed != nil:
		out.add(q, failureCode(r.mu.failed), 0, 0)
	case q.epoch > r.mu.epoch:
		if len(r.mu.parked) >= maxParked {
			out.add(q, codeRetry, 0, 0)
			break
		}
		r.mu.parked = append(r.mu.parked, q)
	case r.mu.role != roleLeader || r.mu.superseded:
		out.add(q, codeNotLeader, r.mu.leader, r.mu.epoch)
	case q.epoch < r.mu.epoch:
		// Sent for an older epoch: by a producer whose metadata lags (it
		// resends at once, as this epoch's), or a message of an earlier
		// attempt that reached an old leader, leader again now, after
		// later calls went to the leaders between: taken, it could write
		// the batch of a call given up on since, behind batches past the
		// dedup window (see dedup.go).
		out.add(q, codeNotLeader, r.m.cfg.ID, r.mu.epoch)
	default:
		q.queuedAt = r.m.mono()
		r.mu.queue = append(r.mu.queue, q)
		r.kickLocked()
	}
	r.mu.Unlock()
	out.deliver(r.m)
}

// failureCode maps a storage failure to its wire code: a stalled sync
// and a failed write or sync alike are "storage stalled" (ErrStorageStalled:
// "stalled or failed"), since either way the replica takes no more writes,
// its node reports itself unhealthy and leadership moves, which a
// producer elsewhere rides out.
func failureCode(error) byte { return codeStorageStalled }

// failLocked records a storage failure: the replica takes no more writes,
// the node reports itself unhealthy so that leadership moves.
func (r *replica) failLocked(err error, out *answers) {
	if r.mu.failed != nil {
		return
	}
	r.mu.failed = err
	r.m.cfg.Logger.Error("replication: replica storage failed", "topic", r.topic, "partition", r.key.partition, "err", err)
	code := failureCode(err)
	for _, q := range r.mu.queue {
		out.add(q, code, 0, 0)
	}
	for _, q := range r.mu.parked {
		out.add(q, code, 0, 0)
	}
	r.mu.queue, r.mu.parked = nil, nil
	r.m.reportUnhealthy()
}

// close stops the replica: waiting producers are told to retry (the
// Manager fails them itself when it closes), the log is closed, and with
// remove the replica's files are deleted.
func (r *replica) close(remove bool) error {
	var out answers
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.closed = true
	r.failLeaderWorkLocked(&out, 0, 1<<31-1)
	r.mu.Unlock()
	out.deliver(r.m)
	err := r.log.Close()
	if errors.Is(err, log.ErrClosed) {
		err = nil
	}
	// A clean stop writes the table at the log's end, if it changed, so
	// that the next start records nothing from the log; after a failure,
	// or to remove the replica, the snapshot write in flight (if any)
	// ends first. A failed replica's table may be partial (a failed read
	// at open): it writes none.
	last := func() error { return nil }
	r.mu.Lock()
	if err == nil && !remove && r.mu.failed == nil && r.mu.snapDirty {
		b := encodeProducerSnapshot(r.log.NextOffset(), r.mu.producers)
		last = func() error { return r.writeSnapshot(b) }
	}
	r.mu.Unlock()
	if serr := r.snapIO(last); serr != nil {
		r.m.cfg.Logger.Warn("replication: writing the producer snapshot at close",
			"topic", r.topic, "partition", r.key.partition, "err", serr)
	}
	if remove {
		// A directory left by a failure here is removed by the next
		// start's sweep.
		if derr := r.m.removeReplicaDir(r.dir); derr != nil {
			return fmt.Errorf("replication: remove %s: %w", r.dir, derr)
		}
		return nil
	}
	return err
}

// state reports the replica's high watermark and log start offset.
func (r *replica) state() (hw, logStart int64) {
	return r.log.HighWatermark(), r.log.LogStartOffset()
}

// inISR reports whether id is in the replica's view of the ISR.
func (r *replica) inISRLocked(id uint64) bool { return slices.Contains(r.mu.part.ISR, id) }
