package log

import (
	"context"
	"fmt"
	"math"

	"github.com/replog/replog/wal"
)

// TruncateTo removes the records at and after offset, for a follower
// whose log diverged from its new leader's. Truncation is by whole
// batches: a batch holding offset is removed whole, so the log end offset
// afterwards is the largest batch boundary <= offset. It refuses with
// ErrTruncateBelowHighWatermark if that would remove a record below the
// high watermark. The leader-epoch cache loses the epochs that start at or
// after the new end (including epochs begun by BeginEpoch that hold no
// records, when offset is at or beyond the end). It syncs the wal, writes
// a checkpoint of the truncated state, then truncates the wal; appends and
// reads wait meanwhile. Errors: ErrTruncateBelowHighWatermark, ErrClosed,
// storage errors wrapped.
func (l *Log) TruncateTo(ctx context.Context, offset int64) error {
	return l.truncate(ctx, offset, false)
}

// TruncateBelowHighWatermark is TruncateTo for a follower whose leader's
// log ends below this log's high watermark: it may remove records below
// the high watermark, and then lowers the high watermark to the new log
// end. That is only legitimate when those records may have been lost
// anyway, so it works only when Options.WAL.Durability is not
// wal.SyncAlways (after a crash of every replica the new leader may have
// lost more unsynced data than this follower); under SyncAlways it
// refuses exactly as TruncateTo does. It cannot truncate below the log
// start offset (ErrOffsetOutOfRange). Waiters already released by the
// higher high watermark stay released. Errors: as TruncateTo, and
// ErrOffsetOutOfRange.
func (l *Log) TruncateBelowHighWatermark(ctx context.Context, offset int64) error {
	return l.truncate(ctx, offset, l.opts.WAL.Durability != wal.SyncAlways)
}

// truncate is TruncateTo; belowHW lets it remove records below the high
// watermark and lower the high watermark to the new end.
func (l *Log) truncate(ctx context.Context, offset int64, belowHW bool) error {
	l.dataMu.Lock()
	defer l.dataMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.wal.Sync(ctx); err != nil { // every enqueued frame acknowledged and durable
		return wrapWAL("truncate", err)
	}
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.ackLocked()
	leo, hw := l.mu.leo, l.mu.hw
	if belowHW && offset < l.mu.start {
		start := l.mu.start
		l.mu.Unlock()
		return fmt.Errorf("%w: truncating to %d; log start offset %d", ErrOffsetOutOfRange, offset, start)
	}
	if offset < hw && !belowHW {
		l.mu.Unlock()
		return fmt.Errorf("%w: truncating to %d; high watermark %d", ErrTruncateBelowHighWatermark, offset, hw)
	}
	if offset >= leo {
		l.mu.epochs.truncateFromEnd(max(offset, leo))
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	pos, cut, err := l.locate(offset)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if hw = l.mu.hw; cut < hw && !belowHW {
		l.mu.Unlock()
		return fmt.Errorf("%w: truncating to %d would cut the batch from %d; high watermark %d",
			ErrTruncateBelowHighWatermark, offset, cut, hw)
	}
	// SetHighWatermark must not pass cut while the truncation runs.
	l.mu.hwCeiling = cut
	defer func() {
		l.mu.Lock()
		l.mu.hwCeiling = math.MaxInt64
		l.mu.Unlock()
	}()
	index := offsetIndex{entries: append([]indexEntry(nil), l.mu.index.entries...), interval: l.mu.index.interval}
	index.truncateFromEnd(int64(pos))
	epochs := epochCache{entries: l.mu.epochs.snapshot()}
	epochs.truncateFromEnd(cut)
	hw = min(hw, cut) // lower only when belowHW
	ck := &checkpoint{CoverPos: int64(pos), CoverOffset: cut, HighWater: hw, StartOffset: l.mu.start,
		Epochs: epochs.entries, Index: index.entries}
	l.mu.Unlock()
	if err := l.writeCheckpoint(ck); err != nil {
		return err
	}
	if err := l.wal.TruncateAfter(ctx, pos); err != nil {
		return wrapWAL("truncate", err)
	}
	lastPos := wal.Pos(-1)
	if pos > l.wal.Start() {
		lastPos = l.lastFrameBefore(index.entries, pos)
	}
	l.mu.Lock()
	l.mu.index, l.mu.epochs = index, epochs
	l.mu.hw = min(l.mu.hw, cut)
	l.mu.pending.reset()
	l.mu.leo, l.mu.leoPos, l.mu.lastPos, l.mu.assigned = cut, pos, lastPos, cut
	l.mu.Unlock()
	l.appendMu.next = cut
	return nil
}

// ResetTo discards every record and starts the log over, empty, at
// offset (Kafka's truncate-fully-and-start-at): for a follower whose
// leader no longer holds the records it lacks (retention removed them),
// so that it can follow from the leader's log start. The log start, end
// and high watermark all become offset, even if that lowers the high
// watermark; the epoch cache and index are emptied. It first waits for
// every queued append, and is durable when it returns: a crash after it
// recovers the empty log at offset; a crash during it recovers the new
// log, or the old one (a prefix of it if the crash came while its
// segments were being removed) with a high watermark no higher than
// before. Errors: ErrOffsetOutOfRange for a negative
// offset, ErrClosed, storage errors wrapped, ctx's error.
func (l *Log) ResetTo(ctx context.Context, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: reset to %d", ErrOffsetOutOfRange, offset)
	}
	l.dataMu.Lock()
	defer l.dataMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.wal.Sync(ctx); err != nil { // every enqueued frame acknowledged and durable
		return wrapWAL("reset", err)
	}
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.ackLocked()
	interval, hw := l.mu.index.interval, l.mu.hw
	l.mu.Unlock()
	// The checkpoint first: until the wal is cut, recovery finds batches
	// that do not start at its offset, ignores it and keeps the old log
	// (or what the cut left of it) with the checkpoint's high watermark,
	// which must then be no higher than the old log's. Once the cut is
	// done, recovery raises it to the log start, offset.
	pos := l.wal.Start()
	ck := &checkpoint{CoverPos: int64(pos), CoverOffset: offset, HighWater: min(hw, offset), StartOffset: offset}
	if err := l.writeCheckpoint(ck); err != nil {
		return err
	}
	if err := l.wal.TruncateAfter(ctx, pos); err != nil {
		return wrapWAL("reset", err)
	}
	l.mu.Lock()
	l.mu.index = offsetIndex{interval: interval}
	l.mu.epochs = epochCache{}
	l.mu.pending.reset()
	l.mu.start, l.mu.hw = offset, offset
	l.mu.leo, l.mu.leoPos, l.mu.lastPos, l.mu.assigned = offset, pos, -1, offset
	l.mu.hwWait.advance(offset)
	l.mu.endWait.advance(offset)
	l.mu.Unlock()
	l.appendMu.next = offset
	return nil
}

// locate returns the position and base offset of the batch holding
// offset (offset < LogEndOffset). The caller holds dataMu exclusively.
func (l *Log) locate(offset int64) (wal.Pos, int64, error) {
	l.mu.Lock()
	e, _ := l.mu.index.lookup(offset)
	endPos, leo := l.mu.leoPos, l.mu.leo
	l.mu.Unlock()
	var buf []byte
	for pos := wal.Pos(e.Pos); pos < endPos; {
		b, next, err := l.readBatch(pos, buf)
		if err != nil {
			return 0, 0, err
		}
		if b.LastOffset() >= offset {
			return pos, b.BaseOffset(), nil
		}
		buf, pos = b[:0], next
	}
	return endPos, leo, nil
}

// lastFrameBefore returns the position of the last frame before pos,
// walking from the last index entry before it.
func (l *Log) lastFrameBefore(entries []indexEntry, pos wal.Pos) wal.Pos {
	from := l.wal.Start()
	for _, e := range entries {
		if wal.Pos(e.Pos) >= pos {
			break
		}
		from = wal.Pos(e.Pos)
	}
	last := wal.Pos(-1)
	var buf []byte
	for p := from; p < pos; {
		b, next, err := l.readBatch(p, buf)
		if err != nil {
			break
		}
		last, p, buf = p, next, b[:0]
	}
	return last
}

// EnforceRetention deletes the oldest whole wal segments that
// Options.RetentionBytes and Options.RetentionTime let go: by size, those
// lying wholly before the last RetentionBytes of the log; by age, those
// whose batches all have timestamps older than Clock() - RetentionTime.
// It never deletes a record at or above the high watermark, nor the last
// batch, nor the active segment. The log start offset moves to the first
// batch kept; the offset index and epoch cache follow. It returns the new
// log start offset. The first batch kept is one the wal has already made
// durable (so under SyncNever retention lags by up to a segment); it does
// no IO but reading a few frames and the wal's segment deletions. Reads
// wait meanwhile. Errors: ErrClosed, storage errors wrapped, ctx's error
// (checked before it deletes).
func (l *Log) EnforceRetention(ctx context.Context) (int64, error) {
	l.dataMu.Lock()
	defer l.dataMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	l.ackLocked()
	start, hw, leo, endPos, lastPos := l.mu.start, l.mu.hw, l.mu.leo, l.mu.leoPos, l.mu.lastPos
	target := wal.Pos(-1)
	if r := l.opts.RetentionBytes; r > 0 {
		target = max(target, endPos-wal.Pos(r))
	}
	if r := l.opts.RetentionTime; r > 0 {
		cutoff := l.opts.Clock().Add(-r).UnixNano()
		target = max(target, wal.Pos(l.mu.index.prefixOlderThan(cutoff, int64(endPos))))
	}
	l.mu.Unlock()
	if target <= l.wal.Start() || lastPos < 0 {
		return start, nil
	}
	target = min(target, lastPos)
	if hw < leo {
		hwPos, _, err := l.locate(hw)
		if err != nil {
			return start, err
		}
		target = min(target, hwPos)
	}
	// The first frame kept must be durable (the log start offset is read
	// from it after a crash): target below DurableEnd puts the segment
	// holding it, whose first frame then starts below DurableEnd, first.
	target = min(target, l.wal.DurableEnd()-1)
	oldStart := l.wal.Start()
	if target-oldStart <= l.minSealedSegment() {
		return start, nil // the first segment cannot end before target
	}
	if err := ctx.Err(); err != nil {
		return start, fmt.Errorf("log: retention: %w", err)
	}
	newStart, err := l.wal.DeleteBefore(target)
	if err != nil {
		return start, wrapWAL("retention", err)
	}
	if newStart == oldStart {
		return start, nil
	}
	b, _, err := l.readBatch(newStart, nil)
	if err != nil {
		return start, err
	}
	base := b.BaseOffset()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.start = base
	l.mu.index.truncateFromStart(int64(newStart), base)
	l.mu.epochs.truncateFromStart(base)
	return base, nil
}

// minSealedSegment is a lower bound of the positions a sealed wal segment
// spans: a segment rolls only when the next frame (at most MaxBatchBytes)
// would take it past SegmentSize. Retention with a target closer than
// this to the start cannot delete anything, and skips its sync.
func (l *Log) minSealedSegment() wal.Pos {
	size := l.opts.WAL.SegmentSize
	if size == 0 {
		size = wal.DefaultSegmentSize
	}
	return wal.Pos(size - wal.SegmentHeaderSize - wal.FrameHeaderSize - int64(l.opts.MaxBatchBytes))
}
