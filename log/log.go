package log

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/replog/replog/wal"
)

// Defaults of Options.
const (
	DefaultMaxBatchBytes      = 4 << 20
	DefaultIndexInterval      = 16 << 10
	DefaultCheckpointInterval = 64 << 20
)

// A Log keeps up to encodeBuffers encode buffers of at most
// maxKeptBuffer bytes for reuse: enough for the concurrent AppendLeader
// calls of a busy partition, at most 2 MiB held per partition. Larger
// batches allocate their buffer (and amortize it).
const (
	encodeBuffers = 8
	maxKeptBuffer = 256 << 10
)

// checkpointName is the checkpoint file in the log's directory.
const checkpointName = "log.checkpoint"

// Options configure Open.
type Options struct {
	// WAL configures the write-ahead log the records live in: FS, Dir
	// (required), SegmentSize (also the granularity of retention),
	// Durability, SyncInterval, SyncTimeout, MaxPending. Its MaxFrameSize
	// is set from MaxBatchBytes and its Logger, if nil, from Logger.
	WAL wal.Options
	// MaxBatchBytes is the largest encoded batch AppendLeader and
	// AppendFollower accept (and the wal's MaxFrameSize). A follower's
	// must be at least its leader's. Default DefaultMaxBatchBytes (4 MiB).
	MaxBatchBytes int
	// IndexInterval is the number of wal bytes between two entries of the
	// sparse offset index: smaller means faster seeks and more memory (24
	// bytes per entry, in RAM and in the checkpoint). Default 16 KiB.
	IndexInterval int
	// CheckpointInterval is how many bytes of appends trigger a background
	// checkpoint of what the wal has made durable. It bounds how much of
	// the wal Open scans after a crash: about CheckpointInterval under
	// wal.SyncAlways, plus up to one segment otherwise (a SyncNever wal
	// syncs at segment rolls). Negative: only Close and TruncateTo write
	// checkpoints. Default 64 MiB.
	CheckpointInterval int64
	// RetentionBytes, if positive, is the size EnforceRetention trims the
	// log to (by whole segments; at least this much is kept).
	RetentionBytes int64
	// RetentionTime, if positive, is the age past which EnforceRetention
	// deletes segments whose newest record timestamp is older, by Clock.
	RetentionTime time.Duration
	// Clock gives the time for zero record timestamps and for retention by
	// age. Default time.Now.
	Clock func() time.Time
	// Logger receives recovery and checkpoint warnings. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.IndexInterval == 0 {
		o.IndexInterval = DefaultIndexInterval
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WAL.Logger == nil {
		o.WAL.Logger = o.Logger
	}
	if o.WAL.FS == nil {
		o.WAL.FS = wal.OSFS{}
	}
	o.WAL.MaxFrameSize = o.MaxBatchBytes
}

func (o *Options) validate() error {
	switch {
	case o.WAL.Dir == "":
		return fmt.Errorf("%w: WAL.Dir is required", ErrInvalidOptions)
	case o.MaxBatchBytes < BatchHeaderSize+minRecordSize || o.MaxBatchBytes > 1<<30:
		return fmt.Errorf("%w: MaxBatchBytes %d out of range", ErrInvalidOptions, o.MaxBatchBytes)
	case o.IndexInterval < 0:
		return fmt.Errorf("%w: negative IndexInterval", ErrInvalidOptions)
	case o.RetentionBytes < 0 || o.RetentionTime < 0:
		return fmt.Errorf("%w: negative retention", ErrInvalidOptions)
	}
	return nil
}

// Log is one partition replica's log. All methods are safe for concurrent
// use.
//
// Locks, in the order they are taken: dataMu (excludes readers of wal
// frames from TruncateTo and EnforceRetention, which drop frames), appendMu
// (puts appends in offset order while they enqueue, which may block on the
// wal's back-pressure; TruncateTo holds it across its IO, so appends wait
// for a truncation), mu (the state; held briefly, never across IO). mu is
// separate from appendMu so that HighWatermark, LogEndOffset, Wait and
// reads never wait behind an Enqueue.
//
// A Log owns one checkpoint goroutine, started by Open and stopped (and
// waited for) by Close. Each checkpoint write runs in a short-lived
// goroutine of its own, waited for up to the sync deadline (see
// writeCheckpoint).
type Log struct {
	opts       Options
	wal        *wal.Log
	fs         wal.FS
	ckptPath   string
	logger     *slog.Logger
	syncAlways bool
	bufs       chan *[]byte // free encode buffers; a channel, not a sync.Pool, so GC does not empty it
	// aheadBufs recycles the read-ahead buffers of scans (scanReadAhead
	// bytes each). A sync.Pool: an idle log's go back to the GC, a busy
	// one's (catch-up, consumers) spare a zeroed allocation per read.
	aheadBufs sync.Pool

	ckptKick chan struct{} // cap 1: wakes the checkpoint goroutine
	ckptBusy chan struct{} // cap 1: full while a checkpoint file is being written
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when the checkpoint goroutine exits

	dataMu sync.RWMutex

	scanned int64 // wal bytes Open validated batch by batch (set before Open returns)

	appendMu struct {
		sync.Mutex
		next int64 // offset the next batch gets
	}

	mu struct {
		sync.Mutex
		closed    bool
		pending   pendingQueue // enqueued, not yet acknowledged by the wal, in order
		leo       int64        // log end offset: acknowledged batches only
		leoPos    wal.Pos      // wal position matching leo
		lastPos   wal.Pos      // position of the last acknowledged batch (-1: none)
		assigned  int64        // end of the offsets handed out (>= leo)
		hw        int64
		hwCeiling int64 // SetHighWatermark's cap besides leo (TruncateTo lowers it while it runs)
		start     int64 // log start offset
		index     offsetIndex
		epochs    epochCache
		hwWait    waitSet // Wait: hw > offset
		endWait   waitSet // WaitEnd: leo > offset
		sinceCkpt int64   // bytes appended since the last checkpoint kick
	}
}

// pendingBatch is a batch enqueued in the wal and not yet acknowledged.
type pendingBatch struct {
	pos, end wal.Pos
	next     int64 // offset after the batch
}

// pendingQueue is a FIFO of pendingBatch that reuses its array: no
// allocation in steady state.
type pendingQueue struct {
	items []pendingBatch
	head  int
}

func (q *pendingQueue) len() int             { return len(q.items) - q.head }
func (q *pendingQueue) front() *pendingBatch { return &q.items[q.head] }
func (q *pendingQueue) reset()               { q.items, q.head = q.items[:0], 0 }

func (q *pendingQueue) push(p pendingBatch) {
	if q.head > 0 && len(q.items) == cap(q.items) {
		n := copy(q.items, q.items[q.head:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, p)
}

func (q *pendingQueue) pop() pendingBatch {
	p := q.items[q.head]
	q.head++
	if q.head == len(q.items) {
		q.reset()
	}
	return p
}

// Open opens (creating if needed) the log in opts.WAL.Dir and recovers it:
// from the checkpoint and the wal frames after it. Errors: ErrInvalidOptions,
// ErrCorruptBatch (a stored batch is damaged or offsets are not dense), the
// wal's errors wrapped (wal.ErrCorrupt, IO errors).
func Open(opts Options) (*Log, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	w, err := wal.Open(opts.WAL)
	if err != nil {
		return nil, fmt.Errorf("log: open: %w", err)
	}
	l := &Log{
		opts:       opts,
		wal:        w,
		fs:         opts.WAL.FS,
		ckptPath:   filepath.Join(opts.WAL.Dir, checkpointName),
		logger:     opts.Logger.With("log", opts.WAL.Dir),
		syncAlways: opts.WAL.Durability == wal.SyncAlways,
		ckptKick:   make(chan struct{}, 1),
		ckptBusy:   make(chan struct{}, 1),
		bufs:       make(chan *[]byte, encodeBuffers),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	l.mu.index.interval = int64(opts.IndexInterval)
	if err := l.recover(); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	go l.runCheckpoints()
	return l, nil
}

// Close stops the log: it wakes every Wait and WaitEnd with ErrClosed,
// waits for the appends already enqueued, writes the checkpoint that makes
// the next Open fast, and closes the wal. It returns the wal's failure if
// the log failed. A second Close returns ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.closed = true
	l.mu.hwWait.releaseAll()
	l.mu.endWait.releaseAll()
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	var ckErr error
	if l.wal.Err() == nil {
		ckErr = l.checkpointAll()
	}
	return errors.Join(ckErr, wrapWAL("close", l.wal.Close()))
}

// Err returns the storage failure that stopped the log, or nil.
func (l *Log) Err() error { return wrapWAL("failed", l.wal.Err()) }

// LogEndOffset is the offset after the last acknowledged batch (written,
// and synced under wal.SyncAlways).
func (l *Log) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ackLocked()
	return l.mu.leo
}

// NextOffset is the offset the next append takes: LogEndOffset plus the
// batches queued to the wal and not yet acknowledged (see EnqueueFollower).
func (l *Log) NextOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.assigned
}

// TailStart returns an offset to read from to the log end to read about
// the last n bytes of the log: the base offset of the last indexed batch
// that starts at least n bytes before the end (so the read covers n bytes
// or more, and at most an index interval and a batch beyond), or
// LogStartOffset if the log holds n bytes or less.
func (l *Log) TailStart(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ackLocked()
	e, ok := l.mu.index.lastBefore(int64(l.mu.leoPos) - n + 1)
	if !ok || e.Offset < l.mu.start {
		return l.mu.start
	}
	return e.Offset
}

// WALStats returns the counters of the log's wal: syncs, writes, bytes.
func (l *Log) WALStats() wal.Stats { return l.wal.Stats() }

// LogStartOffset is the offset of the first record kept.
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.start
}

// HighWatermark is the offset below which records are committed.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.hw
}

// SetHighWatermark raises the high watermark to hw, capped at
// LogEndOffset (a follower passes its leader's high watermark, which may
// be ahead of what it holds: Kafka's min(leader HW, LEO)), and wakes the
// Wait calls it passes. A value at or below the current one is ignored:
// the high watermark never moves back. ErrClosed after Close.
func (l *Log) SetHighWatermark(hw int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	l.ackLocked()
	hw = min(hw, l.mu.leo, l.mu.hwCeiling)
	if hw > l.mu.hw {
		l.mu.hw = hw
		l.mu.hwWait.advance(hw)
	}
	return nil
}

// EndOffsetForEpoch answers Kafka's OffsetsForLeaderEpoch: for the largest
// epoch <= epoch this log knows, that epoch and the offset where the next
// epoch starts (the end of the offsets handed out, for the latest epoch).
// An epoch above the latest, or an empty cache, gives (UndefinedEpoch,
// UndefinedOffset); one below the first known gives (epoch, start offset
// of the first known epoch).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.endOffsetFor(epoch, l.mu.assigned)
}

// LatestEpoch is the latest epoch in the leader-epoch cache, or
// UndefinedEpoch.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.mu.epochs.latest(); ok {
		return e.Epoch
	}
	return UndefinedEpoch
}

// Epochs returns a copy of the leader-epoch cache, oldest first.
func (l *Log) Epochs() []EpochEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.snapshot()
}

// BeginEpoch records that epoch starts at the current end of the log: the
// new leader calls it when it takes over, before appending, so that
// EndOffsetForEpoch answers followers of older epochs right. Epoch must
// exceed the latest epoch (equal is a no-op) else ErrStaleEpoch. The entry
// is durable with the next checkpoint or with the epoch's first batch.
func (l *Log) BeginEpoch(epoch int32) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	return l.mu.epochs.assign(epoch, l.appendMu.next)
}

// ackEnd is how far the wal has acknowledged frames (what its Wait covers).
func (l *Log) ackEnd() wal.Pos {
	if l.syncAlways {
		return l.wal.DurableEnd()
	}
	return l.wal.WrittenEnd()
}

// ackLocked moves the log end offset over the pending batches the wal has
// acknowledged, and wakes WaitEnd callers it passes.
func (l *Log) ackLocked() {
	q := &l.mu.pending
	if q.len() == 0 {
		return
	}
	end := l.ackEnd()
	moved := false
	for q.len() > 0 && q.front().end <= end {
		p := q.pop()
		l.mu.leo, l.mu.leoPos, l.mu.lastPos = p.next, p.end, p.pos
		moved = true
	}
	if moved {
		l.mu.endWait.advance(l.mu.leo)
	}
}

// wrapWAL wraps an error of the wal with what failed; log.ErrClosed joins
// wal.ErrClosed.
func wrapWAL(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wal.ErrClosed):
		return fmt.Errorf("log: %s: %w (%w)", what, ErrClosed, err)
	default:
		return fmt.Errorf("log: %s: %w", what, err)
	}
}
