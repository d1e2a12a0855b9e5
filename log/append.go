package log

import (
	"context"
	"fmt"

	"github.com/replog/replog/wal"
)

// AppendLeader appends records as one batch of leaderEpoch, assigning
// offsets base..last, and returns once the wal acknowledges the batch
// (written, and synced under wal.SyncAlways). Records' Offset fields are
// ignored; a zero Timestamp becomes Options.Clock's time. The records are
// copied: the caller may reuse them at once.
//
// Concurrent callers are ordered by offset and share the wal's group
// commit: encoding happens outside the log's locks, offset assignment and
// the wal enqueue under a short one, the wait outside it again. The log
// itself allocates nothing per batch in steady state.
//
// Errors: ErrInvalidRecord (empty batch, bad timestamp), ErrBatchTooLarge
// (larger than MaxBatchBytes encoded), ErrStaleEpoch (leaderEpoch below
// the latest epoch), ErrClosed, storage errors wrapped. A ctx that ends
// after the batch was enqueued returns base and last with ctx's error: the
// batch is still written, at those offsets.
func (l *Log) AppendLeader(ctx context.Context, leaderEpoch int32, records []Record) (base, last int64, err error) {
	return l.AppendLeaderBatch(ctx, NewBatchHeader(0, leaderEpoch), records)
}

// AppendLeaderBatch is AppendLeader with the batch header's producer
// fields (ProducerID, ProducerEpoch, BaseSequence) set by the caller, for
// idempotent producers; h.LeaderEpoch is the epoch, h.BaseOffset is
// ignored (the log assigns it).
func (l *Log) AppendLeaderBatch(ctx context.Context, h BatchHeader, records []Record) (base, last int64, err error) {
	bp := l.getBuf()
	defer l.putBuf(bp)
	buf, err := EncodeBatch((*bp)[:0], h, records, l.opts.Clock())
	if err != nil {
		return 0, 0, err
	}
	*bp = buf
	if len(buf) > l.opts.MaxBatchBytes {
		return 0, 0, fmt.Errorf("%w: batch of %d bytes, limit %d", ErrBatchTooLarge, len(buf), l.opts.MaxBatchBytes)
	}
	b := Batch(buf)
	l.appendMu.Lock()
	base = l.appendMu.next
	b.setBaseOffset(base)
	if err := l.checkLeaderEpoch(h.LeaderEpoch); err != nil {
		l.appendMu.Unlock()
		return 0, 0, err
	}
	pos, end, err := l.wal.Enqueue(ctx, buf)
	if err != nil {
		l.appendMu.Unlock()
		return 0, 0, wrapWAL("append", err)
	}
	l.enqueued(b, pos, end, false)
	l.appendMu.Unlock()
	return base, b.LastOffset(), l.await(ctx, end)
}

func (l *Log) checkLeaderEpoch(epoch int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if last, ok := l.mu.epochs.latest(); ok && epoch < last.Epoch {
		return fmt.Errorf("%w: append in epoch %d, log is at epoch %d", ErrStaleEpoch, epoch, last.Epoch)
	}
	if epoch < 0 {
		return fmt.Errorf("%w: negative epoch %d", ErrStaleEpoch, epoch)
	}
	return nil
}

// enqueued records, under appendMu, a batch the wal took at [pos, end).
// The epoch update cannot fail for a batch checked before the enqueue.
func (l *Log) enqueued(b Batch, pos, end wal.Pos, follower bool) {
	next := b.NextOffset()
	l.appendMu.next = next
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if follower {
		err = l.mu.epochs.assignBatch(b.LeaderEpoch(), b.BaseOffset())
	} else {
		err = l.mu.epochs.assign(b.LeaderEpoch(), b.BaseOffset())
	}
	if err != nil {
		panic(fmt.Sprintf("log: epoch checked before enqueue no longer fits: %v", err))
	}
	l.mu.assigned = next
	l.mu.pending.push(pendingBatch{pos: pos, end: end, next: next})
	l.mu.index.add(b.BaseOffset(), int64(pos), b.maxNanos())
	l.mu.sinceCkpt += int64(end - pos)
	if l.opts.CheckpointInterval > 0 && l.mu.sinceCkpt >= l.opts.CheckpointInterval {
		l.mu.sinceCkpt = 0
		select {
		case l.ckptKick <- struct{}{}:
		default:
		}
	}
}

// await waits for the wal to acknowledge everything before end and moves
// the log end offset.
func (l *Log) await(ctx context.Context, end wal.Pos) error {
	if err := l.wal.Wait(ctx, end); err != nil {
		return wrapWAL("append", err)
	}
	l.mu.Lock()
	l.ackLocked()
	l.mu.Unlock()
	return nil
}

func (l *Log) getBuf() *[]byte {
	select {
	case bp := <-l.bufs:
		return bp
	default:
		b := make([]byte, 0, 64<<10)
		return &b
	}
}

// putBuf keeps bp for reuse unless enough are kept or it is large (a
// huge batch should not pin its memory).
func (l *Log) putBuf(bp *[]byte) {
	if cap(*bp) > maxKeptBuffer {
		return
	}
	select {
	case l.bufs <- bp:
	default:
	}
}

// AppendFollower appends batches, a concatenation of encoded batches as
// the leader's ReadBatches returned them, unchanged: same offsets, same
// epochs, same bytes. The first batch must start at the end of the offsets
// handed out (normally LogEndOffset) and each must continue the previous,
// else ErrNotContiguous; each batch's checksum and records are validated
// first (ErrCorruptBatch), and nothing is appended if any fails. A batch
// whose epoch is below the log's latest is ErrStaleEpoch, except that
// epochs begun by BeginEpoch that hold no records yet give way. It returns
// the log end offset after the batches, once the wal acknowledges them.
// The bytes are copied into the wal; the caller keeps batches. If it fails
// after enqueueing some of the batches (ctx ended, storage failed), it
// returns the end offset of those with the error: the next batch must
// start there.
func (l *Log) AppendFollower(ctx context.Context, batches []byte) (int64, error) {
	p, err := l.EnqueueFollower(ctx, batches)
	if err != nil {
		return p.next, err
	}
	return p.next, p.Wait(ctx)
}

// Pending is an append that EnqueueFollower handed to the wal: its offsets
// are taken (the next append continues at Next), and Wait tells when the
// wal acknowledges it.
type Pending struct {
	l    *Log
	next int64
	end  wal.Pos
}

// Next is the offset after the pending append's batches.
func (p Pending) Next() int64 { return p.next }

// Wait waits until the wal acknowledges the pending append (durably under
// SyncAlways) and so until LogEndOffset reaches Next. Errors: ctx's, or
// the storage failure (sticky) that lost it.
func (p Pending) Wait(ctx context.Context) error {
	if p.l == nil {
		return nil
	}
	return p.l.await(ctx, p.end)
}

// EnqueueFollower is AppendFollower without the wait: it checks the
// batches as AppendFollower does and hands them to the wal, and returns
// once they are queued (the wal's back-pressure may block it). Appends
// queued one after another are written and synced in order, several per
// wal round, so a caller that keeps queueing while earlier appends sync
// (a pipelined leader or follower) shares syncs among them. If it fails
// after queueing some of the batches, the Pending it returns covers those
// (its Next is where the next batch must start). LogEndOffset moves only
// as Waits return; TruncateTo first waits for every queued append.
func (l *Log) EnqueueFollower(ctx context.Context, batches []byte) (Pending, error) {
	var list []Batch
	for rest := batches; len(rest) > 0; {
		b, r, err := SplitBatch(rest)
		if err != nil {
			return Pending{}, err
		}
		if err := b.Validate(); err != nil {
			return Pending{}, err
		}
		if len(b) > l.opts.MaxBatchBytes {
			return Pending{}, fmt.Errorf("%w: batch of %d bytes, limit %d", ErrBatchTooLarge, len(b), l.opts.MaxBatchBytes)
		}
		if n := len(list); n > 0 && list[n-1].NextOffset() != b.BaseOffset() {
			return Pending{}, fmt.Errorf("%w: batch at %d after a batch ending at %d", ErrNotContiguous, b.BaseOffset(), list[n-1].LastOffset())
		}
		list = append(list, b)
		rest = r
	}
	if len(list) == 0 {
		return Pending{next: l.LogEndOffset()}, nil
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.checkFollower(list); err != nil {
		return Pending{}, err
	}
	p := Pending{l: l, next: l.appendMu.next, end: -1}
	for _, b := range list {
		pos, e, err := l.wal.Enqueue(ctx, b)
		if err != nil {
			// The batches before b were enqueued.
			p.next = l.appendMu.next
			if p.end < 0 {
				p.l = nil
			}
			return p, wrapWAL("append", err)
		}
		l.enqueued(b, pos, e, true)
		p.end = e
	}
	p.next = l.appendMu.next
	return p, nil
}

// checkFollower checks, under appendMu, that list continues the log and
// that its epochs fit the cache.
func (l *Log) checkFollower(list []Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if base := list[0].BaseOffset(); base != l.appendMu.next {
		return fmt.Errorf("%w: batch at %d, log ends at %d", ErrNotContiguous, base, l.appendMu.next)
	}
	trial := epochCache{entries: l.mu.epochs.snapshot()}
	for _, b := range list {
		if err := trial.assignBatch(b.LeaderEpoch(), b.BaseOffset()); err != nil {
			return err
		}
	}
	return nil
}
