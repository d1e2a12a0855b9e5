package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// writerState is owned by the writer goroutine.
type writerState struct {
	spare    []byte      // the buffer Enqueue fills next round
	active   *segment    // the last segment
	size     int64       // the active segment's file size
	interval *time.Timer // SyncInterval; nil under other policies
	armed    bool        // interval is running
	watchdog *time.Timer // fires stalled when a sync of the active segment overruns
	jend     Pos         // Options.Journal: end of the last record appended
	jhdr     []byte      // Options.Journal: scratch for record headers
	// wbFrom is the file offset in the active segment from which written
	// data has not been handed to WriteBack (or synced); wbOff is set under
	// SyncAlways without a Journal (group commits sync the segment) or once
	// the File is found not to write back.
	wbFrom int64
	wbOff  bool
	// checkpoints are the Journal checkpoint syncs running beside the
	// writer (checkpointAsync); it waits for them when it exits.
	checkpoints sync.WaitGroup
}

func (w *writerState) init(l *Log) {
	l.mu.Lock()
	w.active = l.mu.segs[len(l.mu.segs)-1]
	l.mu.Unlock()
	w.size = SegmentHeaderSize + int64(Pos(l.writtenEnd.Load())-w.active.start)
	w.wbFrom = w.size
	w.wbOff = l.opts.Durability == SyncAlways && l.opts.Journal == nil
	w.watchdog = time.AfterFunc(time.Hour, l.stalledSync)
	w.watchdog.Stop()
	if l.opts.Durability == SyncInterval {
		w.interval = time.NewTimer(l.opts.SyncInterval)
		w.interval.Stop()
	}
}

// adminRequest asks the writer to run TruncateAfter's or DeleteBefore's IO
// between group commits.
type adminRequest struct {
	kind  adminKind
	pos   Pos
	reply chan error // buffered
}

// adminKind is what an adminRequest asks for.
type adminKind int

const (
	adminDeleteBefore adminKind = iota
	adminTruncate
	adminCheckpoint // a Journal's checkpoint: sync the active segment
)

// run is the writer goroutine. Owned by the Log: started by Open, stopped by
// Close (through stop); it closes done when it exits.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.w.interval != nil {
		tick = l.w.interval.C
	}
	for {
		intervalDue := false
		select {
		case <-l.kick:
		case <-tick:
			l.w.armed = false
			intervalDue = true
		case req := <-l.adminReq:
			switch req.kind {
			case adminTruncate:
				req.reply <- l.truncate(req.pos)
			case adminCheckpoint:
				l.checkpointAsync(req.reply)
			default:
				req.reply <- l.deleteBefore(req.pos)
			}
			continue
		case <-l.stop:
			l.shutdown()
			return
		}
		l.round(intervalDue)
	}
}

// round writes everything queued as one write (more if a segment rolls) and
// syncs it if the policy, a Sync call or the interval asks.
func (l *Log) round(intervalDue bool) {
	l.mu.Lock()
	if l.mu.err != nil {
		l.mu.Unlock()
		return
	}
	batch, start := l.mu.buf, l.mu.bufStart
	l.mu.buf, l.mu.bufStart = l.w.spare[:0], l.mu.next
	syncReq := l.mu.syncReq
	l.mu.syncReq = false
	if l.mu.space != nil {
		close(l.mu.space)
		l.mu.space = nil
	}
	l.mu.Unlock()

	if len(batch) > 0 {
		if err := l.writeBatch(batch, start); err != nil {
			return
		}
	}
	if cap(batch) <= 2*l.opts.MaxPending {
		l.w.spare = batch
	} else {
		l.w.spare = nil // one huge frame passed: let its buffer go
	}
	if l.WrittenEnd() <= l.DurableEnd() {
		return
	}
	switch {
	case l.opts.Journal != nil:
		l.commitJournalAsync()
	case l.pipe != nil:
		l.pipelineSync()
	case l.opts.Durability == SyncAlways, syncReq, intervalDue:
		l.syncActive()
	case l.opts.Durability == SyncInterval && !l.w.armed:
		l.w.interval.Reset(l.opts.SyncInterval)
		l.w.armed = true
	}
}

// writeBatch writes the frames of batch (the first at start) to the active
// segment, rolling to new segments as they fill. Frames never span segments.
func (l *Log) writeBatch(batch []byte, start Pos) error {
	for off := 0; off < len(batch); {
		n := 0
		for off+n < len(batch) {
			fl := FrameHeaderSize + int(binary.LittleEndian.Uint32(batch[off+n:]))
			empty := l.w.size == SegmentHeaderSize && n == 0
			if !empty && l.w.size+int64(n+fl) > l.opts.SegmentSize {
				break
			}
			n += fl
		}
		if n == 0 {
			if err := l.roll(start + Pos(off)); err != nil {
				return err
			}
			continue
		}
		// Under the watchdog: a write blocks too when the device stops
		// (dirty pages throttled, a full queue), with no sync to notice.
		l.syncing.Store(l.w.active)
		l.writing.Store(true)
		l.w.watchdog.Reset(l.opts.SyncTimeout)
		wrote, err := l.w.active.f.WriteAt(batch[off:off+n], l.w.size)
		stalled := !l.w.watchdog.Stop()
		l.writing.Store(false)
		if stalled {
			return l.fail(ErrStorageStalled) // stalledSync already failed the Log
		}
		l.writes.Add(1)
		l.bytes.Add(int64(wrote))
		if err == nil && wrote < n {
			err = fmt.Errorf("short write: %d of %d bytes", wrote, n)
		}
		if err != nil {
			// The frames past WrittenEnd may be half there; nothing reads
			// them (reads stop at WrittenEnd), nothing writes after them
			// (the Log is failed) and recovery drops them (checksums).
			l.fail(fmt.Errorf("wal: write %s at %d: %w", l.w.active.name, l.w.size, err))
			return err
		}
		if j := l.opts.Journal; j != nil {
			// After the write: the record must never describe bytes the
			// segment does not hold yet (see Journal.checkpoint).
			if err := l.journalAppend(journalWrite, start+Pos(off), batch[off:off+n]); err != nil {
				return err
			}
		}
		l.w.size += int64(n)
		off += n
		l.setEnds(start+Pos(off), -1)
		if err := l.writeBack(); err != nil {
			return err
		}
	}
	return nil
}

// writeBack hands the active segment's unsynced data to WriteBack once
// there is WriteBackBytes of it (see WriteBacker), under the sync deadline.
func (l *Log) writeBack() error {
	if l.w.wbOff || l.w.size-l.w.wbFrom < WriteBackBytes {
		return nil
	}
	wb, ok := l.w.active.f.(WriteBacker)
	if !ok {
		l.w.wbOff = true
		return nil
	}
	from, n := l.w.wbFrom, l.w.size-l.w.wbFrom
	l.w.wbFrom = l.w.size
	return l.guard("write back "+l.w.active.name, func() error {
		if err := wb.WriteBack(from, n); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		l.w.wbOff = true
		return nil
	})
}

// setEnds publishes new ends (a negative durable leaves it) and wakes
// waiters.
func (l *Log) setEnds(written, durable Pos) {
	l.mu.Lock()
	l.writtenEnd.Store(int64(written))
	l.mu.written.wake()
	if durable >= 0 {
		l.durableEnd.Store(int64(durable))
		l.mu.durable.wake()
	}
	l.mu.Unlock()
	if durable >= 0 && l.hooks.durable != nil {
		l.hooks.durable(durable)
	}
}

// syncActive syncs the active segment (through Options.SyncGroup if set)
// under the deadline and publishes the durable end. With Options.Journal it
// is the segment's own fdatasync (rolls, truncation, checkpoints, Close);
// group commits go through commitJournal.
func (l *Log) syncActive() error {
	end := l.WrittenEnd()
	s := l.w.active
	l.syncs.Add(1)
	// The same watchdog as guard's, without its allocations: this runs
	// once per group commit.
	l.syncing.Store(s)
	l.w.watchdog.Reset(l.opts.SyncTimeout)
	var err error
	if g := l.opts.SyncGroup; g != nil {
		err = g.sync(l.fs, s.f)
	} else {
		err = s.f.Sync()
	}
	if !l.w.watchdog.Stop() {
		return l.fail(ErrStorageStalled) // stalledSync already failed the Log
	}
	if err != nil {
		how := ""
		if l.opts.SyncGroup != nil {
			how = " (sync group flush)"
		}
		return l.fail(fmt.Errorf("wal: sync %s%s: %w", s.name, how, err))
	}
	l.w.wbFrom = l.w.size // synced: nothing left to write back
	if l.opts.Journal != nil {
		// Frames are acknowledged only once their journal record is
		// durable: a replay that ends with a truncation cuts the bytes
		// after it, synced or not (see planReplay).
		return nil
	}
	l.setEnds(end, end)
	return nil
}

// stalledSync is the watchdog of syncActive and of writeBatch's writes: it
// fails the Log while the sync or write is still blocked.
func (l *Log) stalledSync() {
	name, op := "?", "sync"
	if s := l.syncing.Load(); s != nil {
		name = s.name
	}
	if l.writing.Load() {
		op = "write"
	}
	l.fail(fmt.Errorf("%w: %s %s blocked for more than %v", ErrStorageStalled, op, name, l.opts.SyncTimeout))
}

// roll syncs the active segment and starts a new one at start: created,
// header written and synced, directory synced, before any frame goes in, so
// every segment but the last is whole and synced, and the last one exists
// durably before it holds acknowledged data.
func (l *Log) roll(start Pos) error {
	l.drainPipeline()
	if err := l.syncActive(); err != nil {
		return err
	}
	name := segmentName(start)
	var f File
	if err := l.guard("create segment "+name, func() (err error) {
		f, err = l.fs.Create(join(l.dir, name))
		return err
	}); err != nil {
		if f != nil {
			_ = f.Close() // created after the deadline: the Log failed already
		}
		return err
	}
	seg := &segment{start: start, name: name, f: f, refs: 1}
	if err := l.initSegment(seg); err != nil {
		if cerr := f.Close(); cerr != nil {
			l.logger.Warn("closing segment", "segment", name, "err", cerr)
		}
		return err
	}
	l.mu.Lock()
	l.mu.segs = append(l.mu.segs, seg)
	l.mu.Unlock()
	l.w.active = seg
	l.w.size = SegmentHeaderSize
	l.w.wbFrom = SegmentHeaderSize
	return nil
}

// initSegment writes and syncs the header of a fresh segment file and syncs
// the directory.
func (l *Log) initSegment(seg *segment) error {
	h := segmentHeader(seg.start)
	if err := l.guard("write header of "+seg.name, func() error {
		if n, err := seg.f.WriteAt(h[:], 0); err != nil || n < len(h) {
			if err == nil {
				err = fmt.Errorf("short write: %d of %d bytes", n, len(h))
			}
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	l.syncs.Add(1)
	if err := l.guard("sync "+seg.name, seg.f.Sync); err != nil {
		return err
	}
	return l.guard("sync dir", func() error { return l.fs.SyncDir(l.dir) })
}

// shutdown is the writer's last act: flush, sync, mark clean, close files.
func (l *Log) shutdown() {
	forgotten := false
	defer func() {
		if j := l.opts.Journal; j != nil && !forgotten {
			j.forget(l.opts.JournalID, false) // its records stay for its replay
		}
	}()
	defer func() {
		l.mu.Lock()
		l.mu.exited = true
		segs := l.mu.segs
		l.notifyLocked()
		l.mu.Unlock()
		for _, s := range segs {
			l.release(s)
		}
	}()
	defer l.w.watchdog.Stop()
	if l.w.interval != nil {
		l.w.interval.Stop()
	}
	l.round(false)
	l.drainPipeline()
	l.w.checkpoints.Wait()
	if l.Err() != nil {
		return
	}
	if l.opts.Journal != nil && l.WrittenEnd() > l.DurableEnd() {
		if err := l.commitJournal(); err != nil {
			return
		}
	}
	if l.WrittenEnd() > l.DurableEnd() || l.opts.Journal != nil {
		if err := l.syncActive(); err != nil {
			return
		}
	}
	if j := l.opts.Journal; j != nil {
		// The segments are durable by themselves: the journal may drop
		// this Log's records.
		j.forget(l.opts.JournalID, true)
		forgotten = true
	}
	// The marker must describe the file as it is: a Log whose files went
	// away under it (a simulated crash) or changed size writes none.
	if size, err := l.w.active.f.Size(); err != nil || size != l.w.size {
		l.logger.Warn("no clean-shutdown marker: the active segment is not as written",
			"segment", l.w.active.name, "size", size, "want", l.w.size, "err", err)
		return
	}
	if err := l.writeCleanMarker(); err != nil {
		l.logger.Warn("writing clean-shutdown marker", "err", err)
	}
}
