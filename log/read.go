package log

import (
	"context"
	"errors"
	"fmt"

	"github.com/replog/replog/wal"
)

// ReadBatches appends to dst whole encoded batches, as stored, from the
// batch that holds offset from on, and returns the extended slice. It
// stops before a batch that reaches limit (a batch is returned only if all
// its offsets are below limit and below LogEndOffset) and before maxBytes
// of batches, except that the first batch is returned whatever its size
// (so a reader always progresses). The first batch may start before from:
// the caller skips what it does not want. dst is the caller's; ReadBatches
// writes only past len(dst). from == LogEndOffset or from >= limit returns
// dst unchanged. Errors: ErrOffsetOutOfRange (from below LogStartOffset or
// above LogEndOffset), ErrClosed, storage errors wrapped.
func (l *Log) ReadBatches(dst []byte, from, limit int64, maxBytes int) ([]byte, error) {
	first := true
	err := l.scanBatches(from, limit, func(b Batch) bool {
		if !first && len(b) > maxBytes {
			return false
		}
		first = false
		dst = append(dst, b...)
		maxBytes -= len(b)
		return maxBytes > 0
	})
	return dst, err
}

// Read returns the records with from <= offset < limit (and below
// LogEndOffset), decoded, up to about maxBytes of encoded batches (at
// least one record if there is one). The records' Key, Value and header
// Values alias one buffer allocated for this call: the caller owns them.
// An empty result with a nil error means nothing is there yet: see Wait.
// Errors: as ReadBatches, plus ErrCorruptBatch.
func (l *Log) Read(from, limit int64, maxBytes int) ([]Record, error) {
	var (
		recs    []Record
		buf     []byte
		decErr  error
		reached bool
	)
	err := l.scanFrames(from, limit, func(b Batch) bool {
		if len(recs) > 0 && len(b) > maxBytes {
			return false
		}
		// Each batch gets its own slice of buf; buf grows into new arrays,
		// never moving the bytes earlier records alias.
		if cap(buf)-len(buf) < len(b) {
			buf = make([]byte, 0, max(len(b), maxBytes, 4096))
		}
		start := len(buf)
		buf = append(buf, b...)
		recs, decErr = Batch(buf[start:]).appendRecords(recs, from, limit)
		if decErr != nil {
			return false
		}
		maxBytes -= len(b)
		reached = b.NextOffset() >= limit
		return maxBytes > 0 && !reached
	})
	if err == nil {
		err = decErr
	}
	return recs, err
}

// scanBatches calls yield with each whole batch holding an offset >= from
// whose offsets are all below limit, in order, until yield returns false.
func (l *Log) scanBatches(from, limit int64, yield func(Batch) bool) error {
	return l.scanFrames(from, limit, func(b Batch) bool {
		if b.LastOffset() >= limit {
			return false
		}
		return yield(b)
	})
}

// scanFrames calls yield with each batch that holds an offset in [from,
// limit), below the log end offset. The Batch is valid only during the
// call.
func (l *Log) scanFrames(from, limit int64, yield func(Batch) bool) error {
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
	bp := l.getBuf()
	defer l.bufs.Put(bp)
	for pos := wal.Pos(e.Pos); pos < endPos; {
		b, next, err := l.readBatch(pos, (*bp)[:0])
		if err != nil {
			if errors.Is(err, wal.ErrOutOfRange) {
				return fmt.Errorf("%w: %w", ErrOffsetOutOfRange, err)
			}
			return err
		}
		*bp = b[:0]
		pos = next
		if b.LastOffset() < from {
			continue
		}
		if b.BaseOffset() >= limit || !yield(b) {
			return nil
		}
	}
	return nil
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
		l.mu.Lock()
		defer l.mu.Unlock()
		if value() > offset {
			return nil
		}
		return ErrClosed
	case <-ctx.Done():
		l.mu.Lock()
		set.remove(w)
		l.mu.Unlock()
		return fmt.Errorf("log: wait for offset %d: %w", offset, ctx.Err())
	}
}
