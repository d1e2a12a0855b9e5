package log

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"time"

	"github.com/replog/replog/wal"
)

// recover rebuilds the state from the checkpoint and the wal frames after
// the position it covers. Called by Open before anything else runs. If the
// wal does not continue where the checkpoint says, the checkpoint is
// dropped (logged) and the whole wal scanned: the checkpoint only saves
// time, the batches are the truth.
func (l *Log) recover() error {
	ck := l.loadCheckpoint()
	err := l.recoverWith(ck)
	if err != nil && ck != nil {
		l.logger.Warn("log: recovery from the checkpoint failed; rebuilding from the wal", "err", err)
		l.mu.index.entries, l.mu.epochs.entries = nil, nil
		l.scanned = 0
		err = l.recoverWith(&checkpoint{CoverPos: -1, HighWater: ck.HighWater})
	}
	return err
}

// recoverWith recovers from ck (nil: none; CoverPos -1: only its high
// watermark).
func (l *Log) recoverWith(ck *checkpoint) error {
	start, end := l.wal.Start(), l.wal.WrittenEnd()
	var (
		scanFrom = start
		next     = int64(-1) // offset expected at scanFrom; -1: take the first batch's
		hw       int64
	)
	if ck != nil {
		hw = ck.HighWater
		switch {
		case ck.CoverPos < 0:
		case ck.CoverPos > int64(end):
			l.logger.Warn("log: checkpoint covers more than the wal holds; rebuilding from the wal",
				"cover", ck.CoverPos, "walEnd", end)
		case ck.CoverPos >= int64(start):
			scanFrom, next = wal.Pos(ck.CoverPos), ck.CoverOffset
			l.mu.index.entries = ck.Index
			l.mu.epochs.entries = ck.Epochs
		default: // retention removed everything the checkpoint indexed
			l.mu.epochs.entries = ck.Epochs
		}
	}
	startOffset, err := l.firstOffset(start, end, scanFrom, next, ck)
	if err != nil {
		return err
	}
	if next < 0 {
		next = startOffset
	}
	l.mu.index.truncateFromStart(int64(start), startOffset)
	leo, lastPos, err := l.scan(scanFrom, next)
	if err != nil {
		return err
	}
	l.mu.start, l.mu.leo, l.mu.assigned, l.appendMu.next = startOffset, leo, leo, leo
	l.mu.hwCeiling = math.MaxInt64
	l.mu.leoPos, l.mu.lastPos = end, lastPos
	l.mu.hw = min(max(hw, startOffset), leo)
	// Entries past the end describe nothing; entries before the start
	// are moved to it.
	n := len(l.mu.epochs.entries)
	for n > 0 && l.mu.epochs.entries[n-1].StartOffset > leo {
		n--
	}
	l.mu.epochs.entries = l.mu.epochs.entries[:n]
	l.mu.epochs.truncateFromStart(startOffset)
	return nil
}

// firstOffset returns the offset of the first batch at start, the log
// start offset.
func (l *Log) firstOffset(start, end, scanFrom wal.Pos, next int64, ck *checkpoint) (int64, error) {
	if start == end {
		switch {
		case next >= 0:
			return next, nil // an empty log that the checkpoint describes
		case start == 0:
			return 0, nil // a new log
		}
		return 0, fmt.Errorf("%w: the wal is empty from position %d and no checkpoint says at which offset", ErrCorruptBatch, start)
	}
	if start == scanFrom && next >= 0 {
		return next, nil
	}
	if ck != nil && start < wal.Pos(ck.CoverPos) && len(ck.Index) > 0 && ck.Index[0].Pos == int64(start) {
		return ck.Index[0].Offset, nil
	}
	b, _, err := l.readBatch(start, nil)
	if err != nil {
		return 0, err
	}
	return b.BaseOffset(), nil
}

// scan reads the frames from pos to the wal's end, checking each batch
// and that offsets continue from next, and indexes them. It returns the
// log end offset and the position of the last batch (-1 if none).
func (l *Log) scan(pos wal.Pos, next int64) (int64, wal.Pos, error) {
	lastPos := wal.Pos(-1)
	if pos > l.wal.Start() {
		lastPos = l.lastFrameBefore(l.mu.index.entries, pos)
	}
	for f, err := range l.wal.Frames(pos) {
		if err != nil {
			return 0, 0, wrapWAL("recover", err)
		}
		b := Batch(f.Payload)
		if err := b.Validate(); err != nil {
			return 0, 0, fmt.Errorf("log: recover: batch at wal position %d: %w", f.Pos, err)
		}
		if b.BaseOffset() != next {
			return 0, 0, fmt.Errorf("log: recover: %w: batch at wal position %d has base offset %d, expected %d",
				ErrCorruptBatch, f.Pos, b.BaseOffset(), next)
		}
		if err := l.mu.epochs.assignBatch(b.LeaderEpoch(), next); err != nil {
			return 0, 0, fmt.Errorf("log: recover: %w: batch at %d: %w", ErrCorruptBatch, next, err)
		}
		l.mu.index.add(next, int64(f.Pos), b.maxNanos())
		l.scanned += int64(f.Next - f.Pos)
		next = b.NextOffset()
		lastPos = f.Pos
	}
	return next, lastPos, nil
}

// readBatch reads the batch at pos into buf and checks its header.
func (l *Log) readBatch(pos wal.Pos, buf []byte) (Batch, wal.Pos, error) {
	p, next, err := l.wal.ReadAt(pos, buf)
	if err != nil {
		return nil, 0, wrapWAL("read", err)
	}
	b, err := frameBatch(p, pos)
	return b, next, err
}

// frameBatch is the batch a wal frame at pos holds, its header checked.
func frameBatch(payload []byte, pos wal.Pos) (Batch, error) {
	b := Batch(payload)
	if err := b.checkHeader(); err != nil {
		return nil, fmt.Errorf("log: batch at wal position %d: %w", pos, err)
	}
	return b, nil
}

// loadCheckpoint reads the checkpoint file; nil if there is none or it is
// unusable (logged: Open then rebuilds from the wal).
func (l *Log) loadCheckpoint() *checkpoint {
	data, err := wal.ReadFile(l.fs, l.ckptPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.logger.Warn("log: cannot read checkpoint; rebuilding from the wal", "err", err)
		}
		return nil
	}
	ck, err := decodeCheckpoint(data)
	if err != nil {
		l.logger.Warn("log: ignoring checkpoint", "err", err)
		return nil
	}
	return ck
}

// runCheckpoints writes a checkpoint each time appends kick it. Owned by
// the Log: started by Open, exits when Close closes stop.
func (l *Log) runCheckpoints() {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case <-l.ckptKick:
		}
		if err := l.checkpointDurable(); err != nil {
			l.logger.Warn("log: checkpoint failed", "err", err)
		}
	}
}

// checkpointAll captures the state up to every frame enqueued so far,
// syncs the wal so they are durable, and writes the checkpoint file: what
// Close does. It holds dataMu shared, so TruncateTo and retention (which
// write their own) do not interleave.
func (l *Log) checkpointAll() error {
	l.dataMu.RLock()
	defer l.dataMu.RUnlock()
	l.appendMu.Lock()
	l.mu.Lock()
	ck := l.snapshotLocked(int64(l.wal.NextPos()), l.appendMu.next)
	l.mu.Unlock()
	l.appendMu.Unlock()
	// Every frame before CoverPos was enqueued before this Sync: synced
	// when it returns.
	if err := l.wal.Sync(context.Background()); err != nil {
		return wrapWAL("checkpoint", err)
	}
	return l.writeCheckpoint(ck)
}

// checkpointDurable writes a checkpoint of what the wal has already made
// durable, without a sync of its own (a sync of a SyncNever wal's dirty
// tail would stall the appenders): up to the acknowledged end if it is
// durable (always under SyncAlways), else up to the last indexed batch
// before the wal's DurableEnd (segment rolls sync, under any Durability).
// It skips the write when nothing durable is indexed.
func (l *Log) checkpointDurable() error {
	l.dataMu.RLock()
	defer l.dataMu.RUnlock()
	l.mu.Lock()
	l.ackLocked()
	durable := l.wal.DurableEnd()
	pos, off := int64(l.mu.leoPos), l.mu.leo
	if l.mu.leoPos > durable {
		e, ok := l.mu.index.lastBefore(int64(durable) + 1)
		if !ok {
			l.mu.Unlock()
			return nil
		}
		pos, off = e.Pos, e.Offset
	}
	ck := l.snapshotLocked(pos, off)
	l.mu.Unlock()
	return l.writeCheckpoint(ck)
}

// snapshotLocked returns the checkpoint of the state up to wal position
// pos, where the offset is off (a batch boundary).
func (l *Log) snapshotLocked(pos, off int64) *checkpoint {
	index := l.mu.index.entries
	n := sort.Search(len(index), func(i int) bool { return index[i].Pos >= pos })
	epochs := l.mu.epochs.entries
	m := sort.Search(len(epochs), func(i int) bool { return epochs[i].StartOffset > off })
	return &checkpoint{
		CoverPos:    pos,
		CoverOffset: off,
		// Only what the checkpoint covers is known durable: a high
		// watermark above it could, after a crash that loses the records
		// below it (SyncNever), vouch for different records written there
		// later.
		HighWater:   min(l.mu.hw, off),
		StartOffset: min(l.mu.start, off),
		Epochs:      append([]EpochEntry(nil), epochs[:m]...),
		Index:       append([]indexEntry(nil), index[:n]...),
	}
}

// writeCheckpoint writes ck with wal.WriteFileAtomic under the sync
// deadline: a write or sync still blocked after Options.WAL.SyncTimeout
// returns an error wrapping wal.ErrStorageStalled at once. The goroutine
// doing the write is then left blocked in the FS and exits when the FS
// returns (as the wal's writer does); it touches nothing of the Log's.
// Until it does, every later checkpoint write fails the same way at once:
// an abandoned write that lands late must not replace a newer checkpoint
// (TruncateTo, which needs one, then refuses to truncate).
func (l *Log) writeCheckpoint(ck *checkpoint) error {
	select {
	case l.ckptBusy <- struct{}{}:
	default:
		return fmt.Errorf("log: checkpoint: an earlier checkpoint write is still blocked: %w", wal.ErrStorageStalled)
	}
	data := encodeCheckpoint(ck)
	done := make(chan error, 1)
	go func() {
		err := wal.WriteFileAtomic(l.fs, l.ckptPath, data)
		<-l.ckptBusy
		done <- err
	}()
	timer := time.NewTimer(l.syncTimeout())
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("log: checkpoint: %w", err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("log: checkpoint: %w", wal.ErrStorageStalled)
	}
}

func (l *Log) syncTimeout() time.Duration {
	if t := l.opts.WAL.SyncTimeout; t > 0 {
		return t
	}
	return wal.DefaultSyncTimeout
}
