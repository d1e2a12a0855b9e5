package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultJournalSegmentSize is the default JournalOptions.SegmentSize.
const DefaultJournalSegmentSize = 64 << 20

// JournalOptions configure OpenJournal. The zero value of every field but
// Dir is valid.
type JournalOptions struct {
	// FS is the file system of the journal. Nil means OSFS{}. The Logs
	// sharing the journal may use another FS value.
	FS FS
	// Dir is the journal's own directory (not a Log's), created if
	// missing. Required.
	Dir string
	// SegmentSize is the size of a journal segment, and how much the
	// journal grows between checkpoints: once SegmentSize bytes of records
	// were appended since the last checkpoint, the journal checkpoints and
	// drops its segments wholly before it. The journal holds about two
	// segments. Default DefaultJournalSegmentSize (64 MiB).
	SegmentSize int64
	// SyncTimeout is the deadline of one journal sync (and of its
	// checkpoints' segment syncs, through each Log's own SyncTimeout).
	// A sync still blocked past it fails the journal, and every Log waiting
	// for it, with ErrStorageStalled. Default DefaultSyncTimeout (10 s).
	SyncTimeout time.Duration
	// Logger receives replay and checkpoint warnings. Default: discard.
	Logger *slog.Logger
}

// Journal is a node's redo journal, shared by the Logs opened with
// Options.Journal: instead of syncing its own active segment every group
// commit, a Log appends what it wrote to the journal, and the journal
// syncs everything its Logs appended meanwhile with one write and one
// fdatasync. See the package doc ("Journal") for the format, the replay
// rules and the trade-offs.
//
// A Journal owns an internal write-ahead log (its writer goroutine, and a
// goroutine running the sync in flight, which the writer waits for) and
// one checkpoint goroutine (which runs one goroutine per Log during a
// checkpoint and waits for them); all are started by OpenJournal and
// stopped by Close. Safe for concurrent use.
type Journal struct {
	opts   JournalOptions
	log    *Log // the records, one frame each, SyncAlways
	logger *slog.Logger

	lastCheckpoint atomic.Int64 // journal position of the last checkpoint (or Open)
	checkpoints    atomic.Int64 // completed checkpoints (journal segments trimmed or not)
	records        atomic.Int64

	kick chan struct{} // cap 1: wakes the checkpointer
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the checkpointer has exited

	mu struct {
		sync.Mutex
		logs   map[string]*Log         // registered Logs; nil while one replays
		index  map[string][]journalRef // records by Log id, journal order
		closed bool
	}
}

// JournalStats are counters of a Journal since OpenJournal.
type JournalStats struct {
	Records     int64 // records appended
	Syncs       int64 // syncs of journal files (group commits, rolls)
	Writes      int64 // write calls to journal files
	Bytes       int64 // bytes written to journal files
	Checkpoints int64 // checkpoints completed
	Start, End  Pos   // the journal's retained range
}

// OpenJournal opens the journal in opts.Dir, creating it if needed, and
// reads its records into an index (the Logs opened with it replay theirs).
// A journal whose records are damaged before the torn tail of its last
// segment is a *CorruptError.
func OpenJournal(opts JournalOptions) (*Journal, error) {
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultJournalSegmentSize
	}
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: journal Dir is required", ErrInvalidOptions)
	}
	if opts.SegmentSize < 0 || opts.SyncTimeout < 0 {
		return nil, fmt.Errorf("%w: negative journal SegmentSize or SyncTimeout", ErrInvalidOptions)
	}
	j := &Journal{
		opts:   opts,
		logger: opts.Logger.With("wal_journal", opts.Dir),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	j.mu.logs = map[string]*Log{}
	j.mu.index = map[string][]journalRef{}
	l, err := open(Options{
		FS:           opts.FS,
		Dir:          opts.Dir,
		SegmentSize:  opts.SegmentSize,
		SyncTimeout:  opts.SyncTimeout,
		MaxFrameSize: maxDecodeLength,
		MaxPending:   max(DefaultMaxPending, int(min(opts.SegmentSize, 64<<20))),
		Logger:       opts.Logger,
	}, journalPipeline, logHooks{durable: j.durableAdvanced, failed: j.failed})
	if err != nil {
		return nil, fmt.Errorf("wal: open journal: %w", err)
	}
	j.log = l
	if err := j.loadIndex(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	j.lastCheckpoint.Store(int64(l.Start()))
	go j.checkpointer()
	return j, nil
}

// loadIndex reads every record.
func (j *Journal) loadIndex() error {
	for f, err := range j.log.Frames(j.log.Start()) {
		if err != nil {
			return fmt.Errorf("wal: read journal: %w", err)
		}
		r, err := decodeJournalRecord(f.Payload)
		if err != nil {
			return &CorruptError{Segment: "journal", Offset: int64(f.Pos), Reason: err.Error()}
		}
		if r.kind == journalForget {
			delete(j.mu.index, r.id) // replay starts after it; trimming need not wait for its id
			continue
		}
		j.mu.index[r.id] = append(j.mu.index[r.id],
			journalRef{jpos: f.Pos, jend: f.Next, kind: r.kind, pos: r.pos, n: len(r.data)})
	}
	return nil
}

// Stats returns the journal's counters.
func (j *Journal) Stats() JournalStats {
	s := j.log.Stats()
	return JournalStats{
		Records: j.records.Load(), Syncs: s.Syncs, Writes: s.Writes, Bytes: s.BytesWritten,
		Checkpoints: j.checkpoints.Load(), Start: j.log.Start(), End: j.log.WrittenEnd(),
	}
}

// Done is closed once the journal's writer goroutine has exited (after
// Close; under a stalled sync, when that sync returns).
func (j *Journal) Done() <-chan struct{} { return j.log.Done() }

// Err returns the journal's sticky failure, or nil.
func (j *Journal) Err() error { return j.log.Err() }

// Close stops the checkpointer and closes the journal. Close the Logs
// first: a Log still open fails at its next commit. Like Log.Close it
// returns promptly under a stalled sync, with ErrStorageStalled. A second
// Close returns ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.mu.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.mu.closed = true
	j.mu.Unlock()
	close(j.stop)
	err := j.log.Close()
	<-j.done
	return err
}

// Forget records durably that the Log with this id is gone for good (its
// directory deleted): its records are never replayed again, and no longer
// keep the journal from trimming. Call it after deleting a Log that shares
// the journal and will not be opened again, and before a new Log with the
// same id is created. A Log with this id must not be open.
func (j *Journal) Forget(ctx context.Context, id string) error {
	j.mu.Lock()
	if _, open := j.mu.logs[id]; open {
		j.mu.Unlock()
		return fmt.Errorf("%w: journal id %q is in use", ErrInvalidOptions, id)
	}
	delete(j.mu.index, id)
	j.mu.Unlock()
	_, err := j.log.Append(ctx, appendJournalHeader(nil, journalForget, id, 0))
	return err
}

// reserve marks id as being opened, and returns its records.
func (j *Journal) reserve(id string) ([]journalRef, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.closed {
		return nil, fmt.Errorf("wal: journal: %w", ErrClosed)
	}
	if _, ok := j.mu.logs[id]; ok {
		return nil, fmt.Errorf("%w: journal id %q is in use", ErrInvalidOptions, id)
	}
	j.mu.logs[id] = nil
	return append([]journalRef(nil), j.mu.index[id]...), nil
}

// register makes l (its id reserved, replayed) a Log of the journal; nil
// drops the reservation.
func (j *Journal) register(id string, l *Log) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if l == nil {
		delete(j.mu.logs, id)
		return
	}
	j.mu.logs[id] = l
}

// forget unregisters a closing Log. clean means its segments are durable
// by themselves: its records are no longer needed. Otherwise they stay, are
// replayed when it opens again, and hold trimming back.
func (j *Journal) forget(id string, clean bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.mu.logs, id)
	if clean {
		delete(j.mu.index, id)
	}
}

// replayInto applies the records of id to the segments in dir and returns
// the end of the bytes it restored (-1 if none).
func (j *Journal) replayInto(fsys FS, dir string, refs []journalRef, timeout time.Duration) (Pos, error) {
	if len(refs) == 0 {
		return -1, nil
	}
	// Records of an earlier incarnation in this process may not be written
	// yet (a Log that failed while its round waited).
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := j.log.Wait(ctx, refs[len(refs)-1].jend); err != nil {
		return -1, fmt.Errorf("wal: journal replay: %w", err)
	}
	var buf []byte
	read := func(jpos Pos) ([]byte, error) {
		var err error
		buf, _, err = j.log.ReadAt(jpos, buf)
		if err != nil {
			return nil, fmt.Errorf("wal: journal replay: read record at %d: %w", jpos, err)
		}
		r, err := decodeJournalRecord(buf)
		if err != nil {
			return nil, &CorruptError{Segment: "journal", Offset: int64(jpos), Reason: err.Error()}
		}
		return r.data, nil
	}
	return replay(fsys, dir, refs, read, func(msg string, args ...any) { j.logger.Warn(msg, args...) })
}

// appendRecord enqueues a record (header, then data) for id and indexes it.
// It returns the end of the record's frame: the Log waits for the journal's
// durable end to pass it.
func (j *Journal) appendRecord(id string, hdr, data []byte, kind byte, pos Pos) (Pos, error) {
	jpos, jend, err := j.log.enqueueParts(context.Background(), hdr, data)
	if err != nil {
		return 0, fmt.Errorf("wal: journal: %w", err)
	}
	j.records.Add(1)
	j.mu.Lock()
	j.mu.index[id] = append(j.mu.index[id], journalRef{jpos: jpos, jend: jend, kind: kind, pos: pos, n: len(data)})
	j.mu.Unlock()
	if int64(jend)-j.lastCheckpoint.Load() > j.opts.SegmentSize {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	return jend, nil
}

// durableAdvanced tells the registered Logs that the journal has synced
// everything before jdurable. The internal log calls it.
func (j *Journal) durableAdvanced(jdurable Pos) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, l := range j.mu.logs {
		if l != nil {
			l.journalDurable(jdurable)
		}
	}
}

// failed fails the registered Logs waiting for the journal. The internal
// log calls it once, when it fails.
func (j *Journal) failed(err error) {
	j.mu.Lock()
	logs := make([]*Log, 0, len(j.mu.logs))
	for _, l := range j.mu.logs {
		if l != nil {
			logs = append(logs, l)
		}
	}
	j.mu.Unlock()
	for _, l := range logs {
		l.journalFailed(err)
	}
}

// waitDurable waits until the journal has synced everything before end, the
// journal fails (its error), or abort is closed (nil: the caller knows why).
func (j *Journal) waitDurable(end Pos, abort <-chan struct{}) error {
	for {
		ch, err := j.log.waitStep(&j.log.durableEnd, end)
		if ch == nil {
			return err
		}
		select {
		case <-ch:
		case <-abort:
			return nil
		}
	}
}

// checkpointer is the goroutine that trims the journal. Owned by the
// Journal: started by OpenJournal, stopped by Close.
func (j *Journal) checkpointer() {
	defer close(j.done)
	for {
		select {
		case <-j.stop:
			return
		case <-j.kick:
		}
		if int64(j.log.NextPos())-j.lastCheckpoint.Load() > j.opts.SegmentSize {
			j.checkpoint()
		}
	}
}

// checkpoint makes every registered Log sync its active segment, then drops
// the journal segments wholly before the point where it started (and before
// the first record of any Log not registered, whose records must stay for
// its replay). A Log that fails its sync cancels the trim.
func (j *Journal) checkpoint() {
	p := j.log.NextPos() // every record before p was enqueued after its bytes were written
	j.lastCheckpoint.Store(int64(p))
	type member struct {
		id  string
		l   *Log
		err error
	}
	j.mu.Lock()
	members := make([]member, 0, len(j.mu.logs))
	for id, l := range j.mu.logs {
		if l != nil {
			members = append(members, member{id: id, l: l})
		}
	}
	j.mu.Unlock()
	// All at once: the disk merges the syncs, and each Log's writer holds
	// its appends back for one sync only.
	var wg sync.WaitGroup
	for i := range members {
		m := &members[i]
		wg.Go(func() { m.err = m.l.toWriter(adminRequest{kind: adminCheckpoint, reply: make(chan error, 1)}) })
	}
	wg.Wait()
	synced := make(map[string]bool, len(members))
	for _, m := range members {
		if m.err == nil {
			synced[m.id] = true
			continue
		}
		j.mu.Lock()
		still := j.mu.logs[m.id] == m.l
		j.mu.Unlock()
		if still {
			// A failed Log: its records stay until it is replayed.
			j.logger.Warn("checkpoint: a Log did not sync; journal not trimmed", "id", m.id, "err", m.err)
			return
		}
		// Closed meanwhile: cleanly (its records are dropped) or not (they
		// stay, and hold the trim back below).
	}
	j.mu.Lock()
	for id, refs := range j.mu.index {
		if !synced[id] && len(refs) > 0 {
			p = min(p, refs[0].jpos)
		}
	}
	j.mu.Unlock()
	start, err := j.log.DeleteBefore(p)
	if err != nil {
		j.logger.Warn("checkpoint: trimming the journal", "err", err)
		return
	}
	j.mu.Lock()
	for id, refs := range j.mu.index {
		i := 0
		for i < len(refs) && refs[i].jpos < start {
			i++
		}
		if i == len(refs) {
			delete(j.mu.index, id)
		} else if i > 0 {
			j.mu.index[id] = append([]journalRef(nil), refs[i:]...)
		}
	}
	j.mu.Unlock()
	j.checkpoints.Add(1)
}
