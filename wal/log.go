package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Durability is what a Log promises about acknowledged frames when the OS or
// the machine crashes. See the package doc.
type Durability int

const (
	// SyncAlways syncs every group commit before Wait returns: an
	// acknowledged frame survives any crash. The default.
	SyncAlways Durability = iota
	// SyncInterval writes at once and syncs every Options.SyncInterval.
	// UNSAFE: an OS or machine crash loses up to SyncInterval of
	// acknowledged frames.
	SyncInterval
	// SyncNever writes at once and syncs only on segment roll, Sync and
	// Close. UNSAFE: an OS or machine crash loses an unbounded amount of
	// acknowledged frames. For data another replica holds, and for tests.
	SyncNever
)

// String returns the policy's name.
func (d Durability) String() string {
	switch d {
	case SyncAlways:
		return "SyncAlways"
	case SyncInterval:
		return "SyncInterval"
	case SyncNever:
		return "SyncNever"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Defaults of Options.
const (
	DefaultSegmentSize  = 64 << 20
	DefaultSyncTimeout  = 10 * time.Second
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultMaxFrameSize = 16 << 20
	DefaultMaxPending   = 8 << 20
)

// Options configure Open. The zero value of every field but Dir is valid.
type Options struct {
	// FS is the file system the Log lives in. Nil means OSFS{}.
	FS FS
	// Dir is the Log's directory, created if missing. Required.
	Dir string
	// SegmentSize is the size at which a segment rolls: a frame that would
	// take the active segment past it goes to a new segment. Larger
	// segments mean fewer files and coarser retention; a crash recovery
	// scans at most one segment. Default DefaultSegmentSize (64 MiB).
	SegmentSize int64
	// Durability chooses when data is synced. Default SyncAlways; the others
	// lose acknowledged data on an OS or machine crash (see the package doc).
	Durability Durability
	// SyncInterval is the period of syncs under SyncInterval. Default
	// DefaultSyncInterval (100 ms).
	SyncInterval time.Duration
	// SyncTimeout is the deadline of one sync (and of the directory syncs of
	// segment rolls, truncation and retention) and of one segment write. A
	// sync or write still blocked past it fails the Log with
	// ErrStorageStalled. Default DefaultSyncTimeout (10 s).
	SyncTimeout time.Duration
	// MaxFrameSize is the largest payload Enqueue accepts. Default
	// DefaultMaxFrameSize (16 MiB); at most 1 GiB.
	MaxFrameSize int
	// MaxPending is how many bytes of frames may wait for the writer before
	// Enqueue blocks (back-pressure). A single frame larger than it is still
	// accepted when nothing else waits. Default DefaultMaxPending (8 MiB).
	MaxPending int
	// Logger receives recovery warnings and failures. Default: discard.
	Logger *slog.Logger
	// SyncGroup, when set, merges the syncs of the active segment (group
	// commits, Sync, SyncInterval, roll, Close) with those of the other Logs
	// sharing the group into one flush of the whole file system (syncfs(2)
	// on Linux): one device flush per round for all of a node's Logs
	// instead of one per Log. SyncTimeout still bounds each sync, now
	// including its wait for the flush. Nil (the default): the Log syncs its
	// own file with fdatasync. See SyncGroup for the trade-offs.
	SyncGroup *SyncGroup
	// Journal, when set, replaces the per-round fdatasync of the active
	// segment: each group commit appends what it wrote to the shared
	// journal, and its frames are durable (Wait returns) once the journal
	// has synced that record; the journal syncs the records of all its Logs
	// with one write and one fdatasync per round. Rolls, TruncateAfter,
	// checkpoints and Close still fdatasync the segment itself. Open first
	// replays the journal's records for JournalID onto the segments. The
	// journal's SyncTimeout, not this Log's, bounds its group commits
	// (this Log's still bounds its own syncs). Only with Durability
	// SyncAlways, and not with SyncGroup. Nil (the default): the Log syncs
	// its own file. See the package doc, "Journal".
	Journal *Journal
	// JournalID names the Log in the journal. It must be stable across
	// restarts and unique among the journal's Logs. Default: Dir, cleaned
	// (filepath.Clean): keep Dir stable (the same path at every start), or
	// set JournalID. At most 65535 bytes.
	JournalID string
}

func (o *Options) setDefaults() {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Journal != nil && o.JournalID == "" {
		o.JournalID = filepath.Clean(o.Dir)
	}
}

func (o *Options) validate() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("%w: Dir is required", ErrInvalidOptions)
	case o.SegmentSize < SegmentHeaderSize+FrameHeaderSize:
		return fmt.Errorf("%w: SegmentSize %d too small", ErrInvalidOptions, o.SegmentSize)
	case o.Durability < SyncAlways || o.Durability > SyncNever:
		return fmt.Errorf("%w: unknown %v", ErrInvalidOptions, o.Durability)
	case o.SyncInterval < 0 || o.SyncTimeout < 0:
		return fmt.Errorf("%w: negative SyncInterval or SyncTimeout", ErrInvalidOptions)
	case o.MaxFrameSize < 0 || o.MaxFrameSize > maxDecodeLength:
		return fmt.Errorf("%w: MaxFrameSize %d out of range", ErrInvalidOptions, o.MaxFrameSize)
	case o.MaxPending < 0:
		return fmt.Errorf("%w: negative MaxPending", ErrInvalidOptions)
	case o.Journal != nil && o.Durability != SyncAlways:
		return fmt.Errorf("%w: a Journal needs Durability SyncAlways, not %v", ErrInvalidOptions, o.Durability)
	case o.Journal != nil && o.SyncGroup != nil:
		return fmt.Errorf("%w: Journal and SyncGroup are exclusive", ErrInvalidOptions)
	case len(o.JournalID) > maxJournalID:
		return fmt.Errorf("%w: JournalID of %d bytes", ErrInvalidOptions, len(o.JournalID))
	}
	return nil
}

// Log is a write-ahead log in one directory. All methods are safe for
// concurrent use.
//
// A Log owns one writer goroutine, started by Open and stopped by Close; it
// is gone when Done is closed (see Close for a stalled sync).
type Log struct {
	opts   Options
	fs     FS
	dir    string
	logger *slog.Logger

	writtenEnd atomic.Int64 // written to the OS; only the writer stores (under mu)
	durableEnd atomic.Int64 // synced; only the writer stores (under mu)
	truncGen   atomic.Uint64
	syncing    atomic.Pointer[segment] // the segment the writer's watchdog guards (a sync or a write)
	writing    atomic.Bool             // the writer is in a segment write (for the watchdog's message)
	syncs      atomic.Int64
	commits    atomic.Int64 // group commits through Options.Journal
	writes     atomic.Int64
	bytes      atomic.Int64

	kick     chan struct{}     // cap 1: wakes the writer
	stop     chan struct{}     // closed by Close
	done     chan struct{}     // closed when the writer has exited
	failed   chan struct{}     // closed when the Log fails
	stalled  chan struct{}     // closed when the Log fails by a stalled sync
	admin    chan struct{}     // cap 1: serialises TruncateAfter and DeleteBefore
	adminReq chan adminRequest // TruncateAfter and DeleteBefore to the writer

	mu struct {
		sync.Mutex
		err      error         // sticky failure
		closed   bool          // Close was called
		exited   bool          // the writer has shut down
		next     Pos           // position of the next Enqueue
		buf      []byte        // queued frames; the first is at bufStart
		bufStart Pos           //
		syncReq  bool          // Sync asked for a sync
		written  waitChan      // WrittenEnd advanced, the Log failed or closed
		durable  waitChan      // DurableEnd advanced, the Log failed or closed
		space    chan struct{} // non-nil while an Enqueue waits for room
		barrier  chan struct{} // non-nil while TruncateAfter holds Enqueue
		segs     []*segment    // by start; the last is active
	}

	w writerState // owned by the writer goroutine

	replayedEnd Pos           // set by Open: end of what the journal replay restored, or -1
	pipe        *syncPipeline // a Journal's internal log: syncs in flight; nil otherwise
	hooks       logHooks      // a Journal's internal log: its listeners; zero otherwise

	// jpend are the group commits waiting for their journal records to be
	// synced (Options.Journal), oldest first.
	jpend struct {
		sync.Mutex
		q []journalCommit
	}
}

// logHooks let a Journal follow its internal log. They run on the
// goroutine that advanced the durable end or failed the Log, with no lock
// of the Log held.
type logHooks struct {
	durable func(Pos)   // the durable end advanced to at least this
	failed  func(error) // the Log failed with this
}

// segment is one segment file. Its end is the next segment's start, or
// WrittenEnd for the last one.
type segment struct {
	start Pos
	name  string
	f     File
	refs  int // under Log.mu; the Log's list holds one
}

// Stats are counters of a Log's IO since Open.
type Stats struct {
	Syncs        int64 // file syncs issued (group commits, rolls, truncation, Sync, Close), through Options.SyncGroup or not; with Options.Journal only the segment's own syncs
	Commits      int64 // group commits made durable through Options.Journal
	Writes       int64 // write calls issued for frames
	BytesWritten int64 // frame bytes written
}

// Open opens the Log in opts.Dir, creating it if needed, and recovers it:
// a torn tail of the last segment is truncated; damage before it is a
// *CorruptError (errors.Is ErrCorrupt). See the package doc.
func Open(opts Options) (*Log, error) { return open(opts, 0, logHooks{}) }

// open is Open; pipeline > 0 lets that many syncs be in flight, and hooks
// are called as the Log advances and fails (a Journal's internal log).
func open(opts Options, pipeline int, hooks logHooks) (*Log, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	l := &Log{
		opts:        opts,
		fs:          opts.FS,
		dir:         opts.Dir,
		logger:      opts.Logger.With("wal", opts.Dir),
		kick:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		failed:      make(chan struct{}),
		stalled:     make(chan struct{}),
		admin:       make(chan struct{}, 1),
		adminReq:    make(chan adminRequest),
		replayedEnd: -1,
	}
	if pipeline > 0 {
		l.pipe = newSyncPipeline(pipeline)
	}
	l.hooks = hooks

	if j := opts.Journal; j != nil {
		refs, err := j.reserve(opts.JournalID)
		if err != nil {
			return nil, err
		}
		if l.replayedEnd, err = j.replayInto(l.fs, l.dir, refs, opts.SyncTimeout); err != nil {
			j.register(opts.JournalID, nil)
			return nil, err
		}
	}
	segs, end, err := l.recover()
	if j := opts.Journal; j != nil {
		if err != nil {
			j.register(opts.JournalID, nil)
		} else {
			j.register(opts.JournalID, l)
		}
	}
	if err != nil {
		return nil, err
	}
	l.mu.segs = segs
	l.mu.next = end
	l.mu.bufStart = end
	l.writtenEnd.Store(int64(end))
	l.durableEnd.Store(int64(end))
	l.w.init(l)
	go l.run()
	return l, nil
}

// Enqueue copies payload into the pending group commit and returns the
// frame's position and the position right after it, without waiting for IO.
// It blocks (until ctx ends) only while MaxPending bytes already wait for the
// writer, or while TruncateAfter runs. Positions are assigned in call order.
// Errors: ErrFrameTooLarge, ErrClosed, the sticky failure, ctx's error.
func (l *Log) Enqueue(ctx context.Context, payload []byte) (pos, end Pos, err error) {
	return l.enqueueParts(ctx, payload, nil)
}

// enqueueParts is Enqueue of the payload a followed by b.
func (l *Log) enqueueParts(ctx context.Context, a, b []byte) (pos, end Pos, err error) {
	n := len(a) + len(b)
	if n > l.opts.MaxFrameSize {
		return 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, l.opts.MaxFrameSize)
	}
	var sum uint64
	if len(b) == 0 {
		sum = xxhashSum(a)
	} else {
		d := xxhash.New()
		_, _ = d.Write(a) // a Digest's Write never fails
		_, _ = d.Write(b)
		sum = d.Sum64()
	}
	size := int(frameSize(n))
	l.mu.Lock()
	for {
		if l.mu.err != nil {
			err := l.mu.err
			l.mu.Unlock()
			return 0, 0, err
		}
		if l.mu.closed {
			l.mu.Unlock()
			return 0, 0, ErrClosed
		}
		var wait chan struct{}
		switch {
		case l.mu.barrier != nil:
			wait = l.mu.barrier
		case len(l.mu.buf) > 0 && len(l.mu.buf)+size > l.opts.MaxPending:
			if l.mu.space == nil {
				l.mu.space = make(chan struct{})
			}
			wait = l.mu.space
		}
		if wait == nil {
			break
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("wal: enqueue: %w", ctx.Err())
		case <-wait:
		case <-l.failed:
		}
		l.mu.Lock()
	}
	pos = l.mu.next
	end = pos + Pos(size)
	l.mu.next = end
	var h [FrameHeaderSize]byte
	putFrameHeader(h[:], pos, n, sum)
	l.mu.buf = append(append(append(l.mu.buf, h[:]...), a...), b...)
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return pos, end, nil
}

// Wait returns once every frame before end is written and, under
// SyncAlways, synced (SyncInterval, SyncNever: written to the OS). A failed
// Log returns its sticky error (ErrStorageStalled, or the IO error wrapped)
// for an end not reached; a closed one ErrClosed; a ctx that ends its error.
func (l *Log) Wait(ctx context.Context, end Pos) error {
	if l.opts.Durability == SyncAlways {
		return l.waitFor(ctx, &l.durableEnd, end)
	}
	return l.waitFor(ctx, &l.writtenEnd, end)
}

// waitFor waits until *v >= end.
func (l *Log) waitFor(ctx context.Context, v *atomic.Int64, end Pos) error {
	for {
		ch, err := l.waitStep(v, end)
		if ch == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wal: wait: %w", ctx.Err())
		case <-ch:
		}
	}
}

// waitStep is one step of a wait for v (WrittenEnd's or DurableEnd's
// counter) to reach end: a nil channel when the wait is over (err nil: v
// reached end; else the sticky failure, or ErrClosed once the writer
// exited), else the channel closed when v next moves.
func (l *Log) waitStep(v *atomic.Int64, end Pos) (<-chan struct{}, error) {
	if Pos(v.Load()) >= end {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case Pos(v.Load()) >= end:
		return nil, nil
	case l.mu.err != nil:
		return nil, l.mu.err
	case l.mu.exited:
		return nil, ErrClosed
	}
	if v == &l.durableEnd {
		return l.mu.durable.get(), nil
	}
	return l.mu.written.get(), nil
}

// Append is Enqueue followed by Wait: it returns the frame's position once
// the frame is written and, per Durability, synced.
func (l *Log) Append(ctx context.Context, payload []byte) (Pos, error) {
	pos, end, err := l.Enqueue(ctx, payload)
	if err != nil {
		return 0, err
	}
	return pos, l.Wait(ctx, end)
}

// Sync forces a sync of every frame enqueued before the call, whatever the
// Durability, and waits for it.
func (l *Log) Sync(ctx context.Context) error {
	l.mu.Lock()
	target := l.mu.next
	if l.mu.err == nil && !l.mu.closed {
		l.mu.syncReq = true
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return l.waitFor(ctx, &l.durableEnd, target)
}

// Start is the position of the first frame kept (DeleteBefore moves it).
func (l *Log) Start() Pos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.segs[0].start
}

// NextPos is the position the next Enqueue will get.
func (l *Log) NextPos() Pos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.next
}

// WrittenEnd is the end of the frames written to the OS: reads see the frames
// before it.
func (l *Log) WrittenEnd() Pos { return Pos(l.writtenEnd.Load()) }

// DurableEnd is the end of the frames known to be synced.
func (l *Log) DurableEnd() Pos { return Pos(l.durableEnd.Load()) }

// Err returns the sticky failure, or nil while the Log is healthy.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.err
}

// Stats returns the Log's IO counters.
func (l *Log) Stats() Stats {
	return Stats{Syncs: l.syncs.Load(), Commits: l.commits.Load(), Writes: l.writes.Load(), BytesWritten: l.bytes.Load()}
}

// Done is closed once the writer goroutine has exited and the Log's files are
// closed (or handed to the readers still holding them).
func (l *Log) Done() <-chan struct{} { return l.done }

// Close writes and syncs what is queued, writes the clean-shutdown marker and
// stops the writer; Enqueue'd frames are not lost by a clean Close. It waits
// for the writer, except when a sync is stalled: then it returns once the
// stall is detected (at most SyncTimeout after the sync began) with
// ErrStorageStalled, and the writer exits when the blocked sync returns (see
// Done). Close of a failed Log returns the failure. A second Close returns
// ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.closed = true
	l.mu.Unlock()
	close(l.stop)
	select {
	case <-l.done:
	case <-l.stalled:
		select {
		case <-l.done:
		default:
		}
	}
	return l.Err()
}

// fail records err as the sticky failure (if none yet), wakes everyone and
// returns the sticky failure.
func (l *Log) fail(err error) error {
	l.mu.Lock()
	if l.mu.err != nil {
		err := l.mu.err
		l.mu.Unlock()
		return err
	}
	l.mu.err = err
	close(l.failed)
	if errors.Is(err, ErrStorageStalled) {
		close(l.stalled)
	}
	l.notifyLocked()
	l.mu.Unlock()
	l.logger.Error("wal failed", "err", err)
	if l.hooks.failed != nil {
		l.hooks.failed(err)
	}
	return err
}

// waitChan is a broadcast: get returns a channel closed by the next wake.
// A channel is made only when someone waits, once per wake-up round.
type waitChan struct{ ch chan struct{} }

func (w *waitChan) get() chan struct{} {
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *waitChan) wake() {
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// notifyLocked wakes every goroutine waiting in waitFor and Enqueue.
func (l *Log) notifyLocked() {
	l.mu.written.wake()
	l.mu.durable.wake()
	if l.mu.space != nil {
		close(l.mu.space)
		l.mu.space = nil
	}
}

// guard runs op (a sync, a directory sync) under the sync deadline: if op is
// still running after SyncTimeout the Log fails with ErrStorageStalled at
// once, and guard returns that when op eventually returns. An error from op
// fails the Log too.
func (l *Log) guard(what string, op func() error) error {
	t := time.AfterFunc(l.opts.SyncTimeout, func() {
		l.fail(fmt.Errorf("%w: %s blocked for more than %v", ErrStorageStalled, what, l.opts.SyncTimeout))
	})
	err := op()
	if !t.Stop() {
		return l.fail(ErrStorageStalled) // the watchdog already failed the Log
	}
	if err != nil {
		return l.fail(fmt.Errorf("wal: %s: %w", what, err))
	}
	return nil
}

// acquire returns the segment holding pos with a reference, and its end.
// l.mu must be held.
func (l *Log) acquireLocked(pos Pos) (*segment, Pos, error) {
	segs := l.mu.segs
	if pos < segs[0].start || pos >= Pos(l.writtenEnd.Load()) {
		return nil, 0, fmt.Errorf("%w: %d not in [%d, %d)", ErrOutOfRange, pos, segs[0].start, l.writtenEnd.Load())
	}
	// The last segment whose start is <= pos.
	i, found := slices.BinarySearchFunc(segs, pos, func(s *segment, p Pos) int { return cmpPos(s.start, p) })
	if !found {
		i--
	}
	end := Pos(l.writtenEnd.Load())
	if i+1 < len(segs) {
		end = segs[i+1].start
	}
	segs[i].refs++
	return segs[i], end, nil
}

// release drops a reference to s and closes its file after the last one.
func (l *Log) release(s *segment) {
	l.mu.Lock()
	s.refs--
	last := s.refs == 0
	l.mu.Unlock()
	if last {
		if err := s.f.Close(); err != nil {
			l.logger.Warn("closing segment", "segment", s.name, "err", err)
		}
	}
}

func cmpPos(a, b Pos) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
