package log

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/replog/replog/wal"
)

// ReadBatches appends to dst whole encoded batches, as stored, from the
// batch that holds offset from on, and returns the extended slice. It
// stops before a batch that reaches limit (a batch is returned only if all
// its offsets are below limit and below LogEndOffset) and before maxBytes
// of batches, except that the first batch is returned whatever its size
// (so a reader always progresses). The first batch may start before from:
// the caller skips what it does not want. dst is the caller's; ReadBatches
// writes only past len(dst), into its spare capacity when it has enough
// (give it maxBytes of capacity to avoid a new array).
// from == LogEndOffset or from >= limit returns
// dst unchanged. Errors: ErrOffsetOutOfRange (from below LogStartOffset or
// above LogEndOffset), ErrClosed, storage errors wrapped.
func (l *Log) ReadBatches(dst []byte, from, limit int64, maxBytes int) ([]byte, error) {
	first := true
	err := l.scanFrames(from, limit, &dst, true, 0, maxBytes, func(b Batch) bool {
		if b.LastOffset() >= limit || (!first && len(b) > maxBytes) {
			return false
		}
		first = false
		maxBytes -= len(b)
		return true
	}, nil)
	return dst, err
}

// Read returns the records with from <= offset < limit (and below
// LogEndOffset), decoded, up to about maxBytes of encoded batches (at
// least one record if there is one). The records' Key, Value and header
// Values alias buffers allocated for this call: the caller owns them.
// An empty result with a nil error means nothing is there yet: see Wait.
// Errors: as ReadBatches, plus ErrCorruptBatch.
func (l *Log) Read(from, limit int64, maxBytes int) ([]Record, error) {
	var (
		recs   []Record
		decErr error
		first  = true
	)
	if end := l.LogEndOffset(); limit > end {
		limit = end
	}
	if from >= limit {
		// Nothing to decode; scanFrames still checks the range.
		return nil, l.scanFrames(from, limit, new([]byte), false, 0, 0, func(Batch) bool { return false }, nil)
	}
	var buf []byte
	hint := min(max(maxBytes, 4096), 4<<20)
	if limit-from <= 64 {
		// A few records: the buffer grows to the batches that hold them,
		// rather than start at maxBytes (1 MiB allocated for one record).
		hint = 4096
	}
	fits := func(b Batch) bool { return first || len(b) <= maxBytes }
	err := l.scanFrames(from, limit, &buf, false, hint, hint, fits, func(b Batch) bool {
		if first {
			// Size the result once, from the first batch's density.
			n := int64(b.Count()) * int64(max(1, maxBytes/max(1, len(b))))
			recs = make([]Record, 0, min(n, limit-from, 1<<16))
			first = false
		}
		recs, decErr = b.appendRecords(recs, from, limit)
		maxBytes -= len(b)
		return decErr == nil && maxBytes > 0 && b.NextOffset() < limit
	})
	if err == nil {
		err = decErr
	}
	return recs, err
}

// scanFrames reads, in order, each batch that holds an offset in [from,
// limit) below the log end offset and asks fits whether to take it: at
// the first it refuses, the scan stops. A batch taken is appended to
// *dst and passed, there, to took (if not nil), which says whether to go
// on. A batch taken is never moved by later appends: one that does not
// fit *dst's spare capacity goes to a new array, a copy of *dst and the
// batch if contiguous, else the batch alone (then *dst is that array:
// records decoded from the batches before alias the old one). An empty
// *dst gets hint bytes of capacity (at most what the log holds past
// from). The wal is read ahead, many frames a read, about want bytes past
// the index entry the scan starts from (at most scanReadAhead).
func (l *Log) scanFrames(from, limit int64, dst *[]byte, contiguous bool, hint, want int, fits, took func(Batch) bool) error {
	l.dataMu.RLock()
	defer l.dataMu.RUnlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.ackLocked()
	start, leo, endPos := l.mu.start, l.mu.leo, l.mu.leoPos
	e, _ := l.mu.index.lookup(from)
	l.mu.Unlock()
	if from < start || from > leo {
		return fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, from, start, leo)
	}
	limit = min(limit, leo)
	if from >= limit {
		return nil
	}
	if cap(*dst) == 0 && hint > 0 {
		*dst = make([]byte, 0, min(int64(hint), int64(endPos)-e.Pos))
	}
	// The scan starts up to an index interval before from; its frames
	// are mostly small: one read of each would cost a system call per
	// batch.
	ahead := min(int64(scanReadAhead), int64(endPos)-e.Pos, int64(l.opts.IndexInterval)+int64(max(want, 4<<10)))
	bp, _ := l.aheadBufs.Get().(*[]byte)
	if bp == nil {
		bp = new(make([]byte, 0, scanReadAhead))
	}
	defer l.aheadBufs.Put(bp) // after r.Close: the Reader is done with it
	r, err := l.wal.NewReaderBuffer(wal.Pos(e.Pos), (*bp)[:0:ahead])
	if err != nil {
		return scanError(err)
	}
	defer r.Close()
	for r.Pos() < endPos {
		f, err := r.Next()
		if err == io.EOF { // the Reader's own, unwrapped: a read's EOF is wrapped
			// The wal's written end is at or past the log's acknowledged
			// end: not reached before it unless truncated under us.
			err = fmt.Errorf("%w: wal ends at %d, before %d", wal.ErrOutOfRange, r.Pos(), endPos)
		}
		if err != nil {
			return scanError(err)
		}
		b, err := frameBatch(f.Payload, f.Pos)
		if err != nil {
			return err
		}
		if b.LastOffset() < from {
			continue
		}
		if b.BaseOffset() >= limit || !fits(b) {
			return nil
		}
		if !contiguous && cap(*dst)-len(*dst) < len(b) {
			*dst = make([]byte, 0, max(len(b), cap(*dst)))
		}
		n := len(*dst)
		*dst = append(*dst, b...)
		if took != nil && !took(Batch((*dst)[n:])) {
			return nil
		}
	}
	return nil
}

// scanReadAhead bounds the bytes scanFrames reads from the wal at once.
const scanReadAhead = 64 << 10

// scanError maps a wal error of a scan to the log's.
func scanError(err error) error {
	if errors.Is(err, wal.ErrOutOfRange) {
		return fmt.Errorf("%w: %w", ErrOffsetOutOfRange, err)
	}
	return wrapWAL("read", err)
}

// Wait returns once the high watermark is above offset (nil), ctx ends
// (ctx's error, wrapped) or the log closes (ErrClosed). It never polls:
// SetHighWatermark wakes exactly the waiters it passes. Any number of
// goroutines may wait.
func (l *Log) Wait(ctx context.Context, offset int64) error {
	return l.wait(ctx, offset, &l.mu.hwWait, func() int64 { return l.mu.hw })
}

// WaitEnd is Wait for the log end offset: it returns once LogEndOffset is
// above offset (for a leader serving a follower's fetch).
func (l *Log) WaitEnd(ctx context.Context, offset int64) error {
	return l.wait(ctx, offset, &l.mu.endWait, func() int64 { l.ackLocked(); return l.mu.leo })
}

func (l *Log) wait(ctx context.Context, offset int64, set *waitSet, value func() int64) error {
	l.mu.Lock()
	if value() > offset {
		l.mu.Unlock()
		return nil
	}
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	w := set.add(offset)
	l.mu.Unlock()
	select {
	case <-w.ch:
		// Released by the value passing offset, or by Close. A truncation
		// may have lowered the value since: released stays released.
		l.mu.Lock()
		defer l.mu.Unlock()
		if value() <= offset && l.mu.closed {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		set.remove(w)
		l.mu.Unlock()
		return fmt.Errorf("log: wait for offset %d: %w", offset, ctx.Err())
	}
}
