package wal

import (
	"context"
	"fmt"
)

// TruncateAfter makes pos, a frame position in [Start, end of the enqueued
// frames], the new end: every frame from pos on is dropped, durably, and the
// next Enqueue gets pos. It first waits (until ctx ends) for the frames
// already enqueued to be written, holding new Enqueue calls back; their
// waiters are released as usual before their frames are dropped. Errors:
// ErrOutOfRange, ErrNotFrameBoundary, ErrClosed, the sticky failure, ctx's
// error.
func (l *Log) TruncateAfter(ctx context.Context, pos Pos) error {
	select {
	case l.admin <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wal: truncate: %w", ctx.Err())
	}
	defer func() { <-l.admin }()

	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	start, next := l.mu.segs[0].start, l.mu.next
	if pos < start || pos > next {
		l.mu.Unlock()
		return fmt.Errorf("%w: truncate to %d, log holds [%d, %d]", ErrOutOfRange, pos, start, next)
	}
	barrier := make(chan struct{})
	l.mu.barrier = barrier
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.mu.barrier = nil
		l.mu.Unlock()
		close(barrier)
	}()

	if err := l.waitFor(ctx, &l.writtenEnd, next); err != nil {
		return err
	}
	if pos == next {
		return nil
	}
	if err := l.checkBoundary(pos); err != nil {
		return err
	}
	return l.toWriter(adminRequest{kind: adminTruncate, pos: pos, reply: make(chan error, 1)})
}

// toWriter hands req to the writer goroutine and waits for its reply, or
// for a stall: the writer may be blocked in a sync that never returns.
func (l *Log) toWriter(req adminRequest) error {
	select {
	case l.adminReq <- req:
	case <-l.done:
		return ErrClosed
	case <-l.failed:
		return l.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-l.stalled:
		return l.Err()
	}
}

// usableLocked returns why the Log takes no more writes, or nil.
func (l *Log) usableLocked() error {
	if l.mu.err != nil {
		return l.mu.err
	}
	if l.mu.closed {
		return ErrClosed
	}
	return nil
}

// checkBoundary checks that a frame starts at pos (< WrittenEnd). The
// header's hsum binds it to its position, so a valid header at pos is a
// frame boundary.
func (l *Log) checkBoundary(pos Pos) error {
	l.mu.Lock()
	s, _, err := l.acquireLocked(pos)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	defer l.release(s)
	if pos == s.start {
		return nil
	}
	var h [FrameHeaderSize]byte
	off := SegmentHeaderSize + int64(pos-s.start)
	if _, err := s.f.ReadAt(h[:], off); err != nil {
		return fmt.Errorf("wal: read %s at %d: %w", s.name, off, err)
	}
	if _, _, ok := decodeHeader(h[:], pos); !ok {
		return fmt.Errorf("%w: %d", ErrNotFrameBoundary, pos)
	}
	return nil
}

// truncate runs on the writer goroutine, with nothing queued: it removes the
// segments lying wholly at or after pos, from the last down, each removal
// made durable before the next (so a crash leaves a contiguous prefix), then
// truncates the segment holding pos and syncs it.
func (l *Log) truncate(pos Pos) error {
	l.drainPipeline()
	if err := l.Err(); err != nil {
		return err
	}
	if l.opts.Journal != nil {
		// Durably first, before any byte goes: a replay that finds the
		// record cuts the writes before it, whatever the crash left of
		// the files (see the package doc, "Journal").
		if err := l.journalAppend(journalTruncate, pos, nil); err != nil {
			return err
		}
		if err := l.commitJournal(); err != nil {
			return err
		}
	}
	for {
		l.mu.Lock()
		segs := l.mu.segs
		last := segs[len(segs)-1]
		if len(segs) == 1 || last.start < pos {
			l.mu.Unlock()
			break
		}
		l.mu.segs = segs[:len(segs)-1]
		prev := segs[len(segs)-2]
		// Readers must not see the frames of the dropped segment as part of
		// the previous one, nor positions past the new end.
		l.writtenEnd.Store(int64(last.start))
		l.durableEnd.Store(min(l.durableEnd.Load(), int64(last.start)))
		l.truncGen.Add(1)
		l.mu.Unlock()
		err := l.fs.Remove(join(l.dir, last.name))
		l.release(last)
		if err != nil {
			return l.fail(fmt.Errorf("wal: truncate: remove %s: %w", last.name, err))
		}
		if err := l.guard("sync dir", func() error { return l.fs.SyncDir(l.dir) }); err != nil {
			return err
		}
		size, err := prev.f.Size()
		if err != nil {
			return l.fail(fmt.Errorf("wal: truncate: size of %s: %w", prev.name, err))
		}
		l.w.active, l.w.size, l.w.wbFrom = prev, size, size
	}
	s := l.w.active
	size := SegmentHeaderSize + int64(pos-s.start)
	l.mu.Lock()
	l.writtenEnd.Store(int64(pos))
	l.durableEnd.Store(min(l.durableEnd.Load(), int64(pos)))
	l.truncGen.Add(1)
	l.mu.next, l.mu.bufStart = pos, pos
	l.mu.Unlock()
	if err := s.f.Truncate(size); err != nil {
		return l.fail(fmt.Errorf("wal: truncate %s to %d: %w", s.name, size, err))
	}
	l.w.size = size
	l.w.wbFrom = min(l.w.wbFrom, size)
	if err := l.syncActive(); err != nil {
		return err
	}
	return nil
}

// DeleteBefore deletes the segments lying wholly before pos (never the
// active one) and returns the new Start. The writer goroutine removes them
// between group commits, oldest first, each removal made durable (a
// directory sync under the sync deadline) before the next, so a crash leaves
// a contiguous log. It returns promptly on a stall. Errors: ErrClosed, the
// sticky failure, IO errors wrapped (a failed removal leaves its segment in
// the directory, where the next Open finds it again as part of the log).
func (l *Log) DeleteBefore(pos Pos) (Pos, error) {
	l.admin <- struct{}{}
	defer func() { <-l.admin }()
	l.mu.Lock()
	err := l.usableLocked()
	l.mu.Unlock()
	if err == nil {
		err = l.toWriter(adminRequest{kind: adminDeleteBefore, pos: pos, reply: make(chan error, 1)})
	}
	return l.Start(), err
}

// deleteBefore runs on the writer goroutine.
func (l *Log) deleteBefore(pos Pos) error {
	for {
		if err := l.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		segs := l.mu.segs
		if len(segs) == 1 || segs[1].start > pos {
			l.mu.Unlock()
			return nil
		}
		first := segs[0]
		l.mu.Unlock()
		// Remove the file first: a removal that fails leaves the segment
		// in the Log and Start where it was, so that everything from
		// Start stays readable. Readers hold the file open meanwhile.
		if err := l.fs.Remove(join(l.dir, first.name)); err != nil {
			return fmt.Errorf("wal: delete %s: %w", first.name, err)
		}
		l.mu.Lock()
		l.mu.segs = l.mu.segs[1:]
		l.mu.Unlock()
		l.release(first)
		if err := l.guard("sync dir", func() error { return l.fs.SyncDir(l.dir) }); err != nil {
			return err
		}
	}
}
