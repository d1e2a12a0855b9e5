package replication

import (
	"errors"

	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

// onPush takes a leader's push for this replica.
func (r *replica) onPush(from uint64, it *pushItem) {
	var out answers
	heard := false
	r.mu.Lock()
	defer func() {
		r.mu.Unlock()
		out.deliver(r.m)
		if heard {
			r.m.notifyChanged() // a Shutdown may wait for this leader
		}
	}()
	if r.mu.closed || r.mu.failed != nil {
		return
	}
	if it.epoch < r.mu.epoch || it.epoch == r.mu.epoch && r.mu.role == roleLeader {
		// A deposed leader: tell it the epoch it lost to.
		r.m.peer(from).ack(&ackItem{topicID: r.key.topicID, partition: r.key.partition, epoch: r.mu.epoch,
			gen: it.gen, status: ackStale, lastEpoch: r.log.LatestEpoch(), logEnd: r.log.LogEndOffset()})
		return
	}
	if it.epoch > r.mu.epoch || r.mu.role != roleFollower {
		// The push arrived before the metadata: only the controller
		// assigns epochs, so its sender leads that epoch.
		r.becomeFollowerLocked(from, it.epoch, &out)
	}
	if r.mu.leader != from {
		return
	}
	if it.epoch > r.mu.heard {
		r.mu.heard, heard = it.epoch, true
	}
	it.arrived = r.m.mono()
	r.mu.fq = append(r.mu.fq, *it)
	r.kickLocked()
}

// followerStep applies the queued pushes in order: truncations, batches
// (contiguous pushes share one log append, and so one sync), high
// watermarks. It does not wait for its appends: each push's answer (the
// log end, once durable) goes to the in-flight list, and the completer
// (followerDone) sends the answers in order while the worker queues the
// next pushes' batches, which the log syncs together. Called with mu
// held; returns with it released, and whether to run again.
func (r *replica) followerStep() bool {
	items := r.mu.fq
	r.mu.fq = nil
	if len(items) == 0 {
		r.mu.working = false
		r.mu.Unlock()
		return false
	}
	epoch, leader := r.mu.epoch, r.mu.leader
	r.mu.Unlock()

	answer := func(it *inflight) {
		it.follower, it.epoch, it.leader = true, epoch, leader
		r.mu.Lock()
		r.queueInflightLocked(it)
		r.mu.Unlock()
	}
	for i := 0; i < len(items); i++ {
		it := &items[i]
		if it.epoch != epoch {
			continue
		}
		switch {
		case it.flags&pushProbe != 0:
			answer(&inflight{gen: it.gen, status: ackHello, answer: true, hw: -1})
		case it.flags&pushHWOnly != 0:
			if !r.agreementKnown(epoch) && !matchPushFollows(items[i+1:], it.gen) {
				// The leader thinks this replica matched, but it does not
				// know where its log agrees with the leader's (it restarted,
				// or the leader ignored its hello as an older generation's
				// answer): without a match it would never take the high
				// watermark. Ask for one with this generation, like a lost
				// push does, and drop the rest of the generation (its
				// match push too, should it come after all): the leader
				// rematches from the log this answer gives, which must
				// not change meanwhile.
				r.badPush.ok, r.badPush.epoch, r.badPush.gen = true, it.epoch, it.gen
				answer(&inflight{gen: it.gen, status: ackMismatch, answer: true, hw: -1})
				continue
			}
			// The leader resends the high watermark until acknowledged.
			last := i == len(items)-1 || items[i+1].flags&pushHWOnly == 0
			answer(&inflight{gen: it.gen, status: ackOK, answer: last, hw: it.hw})
		case it.flags&pushMatchEpoch != 0:
			if err := r.truncateToEpoch(it); err != nil && r.storageFailed(err) {
				return false
			}
			answer(&inflight{gen: it.gen, status: ackMismatch, answer: true, hw: -1}) // the leader matches again from the new end
		case r.badPush.ok && r.badPush.epoch == it.epoch && r.badPush.gen == it.gen:
			// Later pushes of a generation that already failed to
			// continue the log, in this step or an earlier one: the
			// leader rematches on the first answer, from the log end that
			// answer gave. Taking one (it may happen to continue the log)
			// would leave this log longer than the leader's match, and
			// its next push would truncate what the high watermark may
			// already cover.
		default:
			r.badPush.ok = false
			j, p, err := r.followerAppend(items, i)
			if err != nil {
				if r.storageFailed(err) {
					return false
				}
				r.badPush.ok, r.badPush.epoch, r.badPush.gen = true, it.epoch, it.gen
				if errors.Is(err, log.ErrCorruptBatch) || errors.Is(err, log.ErrBatchTooLarge) {
					// Not logs that disagree: a rematch would bring the
					// same batch back at once, for ever. No answer: the
					// leader tries again at its resend timeout.
					continue
				}
				answer(&inflight{gen: it.gen, status: ackMismatch, answer: true, hw: -1})
				continue
			}
			hw := items[j].hw
			for _, x := range items[i : j+1] {
				hw = max(hw, x.hw)
			}
			answer(&inflight{pending: p, start: r.m.mono(), gen: items[j].gen, status: ackOK, answer: true, hw: hw,
				pushes: pushes(items[i : j+1])})
			i = j
		}
	}
	return true
}

// followerDone finishes a follower's in-flight item once the appends
// before it are acknowledged (err is the log's if they failed): it takes
// the leader's high watermark and sends the answer.
func (r *replica) followerDone(it *inflight, err error) {
	if err != nil {
		r.failStorage(err)
		return
	}
	if it.pushes > 0 {
		r.m.stats.followerRounds.Add(1)
		r.m.stats.followerPushes.Add(int64(it.pushes))
		r.m.stats.followerNanos.Add(r.m.mono() - it.start)
	}
	if it.hw >= 0 {
		r.setHW(it.hw, it.epoch)
	}
	if it.answer {
		r.m.peer(it.leader).ack(&ackItem{topicID: r.key.topicID, partition: r.key.partition, epoch: it.epoch, gen: it.gen,
			status: it.status, lastEpoch: r.log.LatestEpoch(), logEnd: r.log.LogEndOffset(), hw: r.log.HighWatermark()})
	}
}

// followerAppend truncates if items[i] says so and queues to the log the
// batches of items[i] and of the contiguous pushes after it; it returns
// the index of the last push applied and the pending append.
func (r *replica) followerAppend(items []pushItem, i int) (int, log.Pending, error) {
	it := &items[i]
	if it.flags&pushTruncate == 0 && !r.agreementKnown(it.epoch) {
		// The first push of this leader's match (it truncates what this
		// log holds past where it agrees with the leader's, and confirms
		// the agreement) was lost. A later push may still continue this
		// log by offset, but over a tail the leader never had (records of
		// an older epoch): taking it would keep them below the high
		// watermark, and their epoch, now followed by the leader's, would
		// hide them from every later match. Ask for a match instead.
		return i, log.Pending{}, errMismatch
	}
	ctx := r.m.ctx
	end := r.log.NextOffset()
	if it.flags&pushReset != 0 && (end != it.prevEnd || r.log.LogStartOffset() != it.prevEnd) {
		// The leader no longer holds what this log lacks (retention):
		// start over, empty, at its log start.
		if err := r.startOver(it.prevEnd, "the leader's log start"); err != nil {
			return i, log.Pending{}, err
		}
		end = r.log.NextOffset()
	}
	if it.flags&pushTruncate != 0 && end > it.prevEnd {
		if err := r.truncateLog(it.prevEnd); err != nil {
			return i, log.Pending{}, err
		}
		end = r.log.NextOffset()
	}
	if it.prevEnd != end {
		return i, log.Pending{}, errMismatch
	}
	if len(it.batches) == 0 {
		r.confirmed(it.epoch, end)
		return i, log.Pending{}, nil
	}
	// Gather the contiguous pushes that follow (high-watermark pushes
	// between them do not break the run): one append, one sync.
	buf := it.batches
	runEnd := r.batchesEnd(buf)
	j, last := i, i
	for j+1 < len(items) {
		n := &items[j+1]
		if n.epoch != it.epoch || n.gen != it.gen {
			break
		}
		if n.flags == pushHWOnly {
			j++
			continue
		}
		if n.flags != 0 || n.prevEnd != runEnd || len(n.batches) == 0 {
			break
		}
		if last == i {
			buf = append(make([]byte, 0, len(buf)+len(n.batches)), buf...)
		}
		buf = append(buf, n.batches...)
		runEnd = r.batchesEnd(n.batches)
		j, last = j+1, j+1
	}
	j = last // trailing high-watermark pushes are applied by the caller
	waited, start := int64(0), r.m.mono()
	for _, x := range items[i : j+1] {
		if x.flags&pushHWOnly == 0 && x.arrived > 0 {
			waited += start - x.arrived
		}
	}
	r.m.stats.pushWaitNanos.Add(waited)
	p, err := r.log.EnqueueFollower(ctx, buf)
	if err != nil {
		return i, log.Pending{}, err
	}
	r.mu.Lock()
	if end := r.recordProducersLocked(buf); end >= 0 {
		r.producersRecordedLocked(len(buf), end)
	}
	r.mu.Unlock()
	// The log agrees with the leader's up to the batches just queued; the
	// high watermark taken after they are durable may reach their end.
	r.confirmed(it.epoch, p.Next())
	return j, p, nil
}

var errMismatch = errors.New("replication: push does not continue the log")

// truncateLog truncates the log to offset (at a batch boundary at or
// below it; at or past the end it drops only epochs begun there without
// records) and forgets the producer batches it removed.
func (r *replica) truncateLog(offset int64) error {
	// A truncation waits for the appends in flight (and so for the
	// answers queued before it).
	r.mu.Lock()
	r.drainLocked()
	r.mu.Unlock()
	truncate := r.log.TruncateTo
	if r.m.cfg.Durability != wal.SyncAlways {
		if offset < r.log.LogStartOffset() {
			// Below what this log still holds (its retention, up to the
			// high watermark the leader lost): start over there.
			return r.startOver(offset, "a truncation below its log start")
		}
		// The leader of this epoch may have lost unsynced records this
		// replica saw committed (every node crashed): follow it, high
		// watermark included, as Kafka does.
		truncate = r.log.TruncateBelowHighWatermark
	}
	if offset < r.log.NextOffset() {
		if err := r.cutSnapshot(offset); err != nil {
			return err
		}
	}
	if err := truncate(r.m.ctx, offset); err != nil {
		return err
	}
	end := r.log.NextOffset()
	r.mu.Lock()
	for _, ps := range r.mu.producers {
		ps.truncate(end)
	}
	r.mu.Unlock()
	return nil
}

// startOver empties the log and starts it at offset (log.ResetTo), after
// the appends in flight; the producer table and its snapshot go too.
func (r *replica) startOver(offset int64, why string) error {
	r.mu.Lock()
	r.drainLocked()
	r.mu.Unlock()
	if err := r.dropSnapshot(); err != nil {
		return err
	}
	if err := r.log.ResetTo(r.m.ctx, offset); err != nil {
		return err
	}
	r.m.cfg.Logger.Info("replication: replica restarted its log", "topic", r.topic, "partition", r.key.partition,
		"offset", offset, "at", why)
	r.mu.Lock()
	clear(r.mu.producers)
	r.mu.Unlock()
	return nil
}

// truncateToEpoch is this replica's step of a match whose leader lacks its
// latest epoch (pushMatchEpoch, Kafka's KIP-279): the leader's answer,
// it.prevEnd, is where the leader's epoch it.matchEpoch ends, but this
// replica's records of later epochs may start below it, and only this log
// knows where. It truncates to its own end of it.matchEpoch as well, which
// removes every epoch after it; its next answer (a mismatch) tells the
// leader its new latest epoch and end, and the leader matches again from
// there. Records below the end are no longer known to agree with the
// leader's until then.
func (r *replica) truncateToEpoch(it *pushItem) error {
	target := it.prevEnd
	if e, end := r.log.EndOffsetForEpoch(it.matchEpoch); e != log.UndefinedEpoch {
		target = min(target, end)
	}
	r.mu.Lock()
	if r.mu.epoch == it.epoch && r.mu.role == roleFollower {
		r.mu.agreed = -1
	}
	r.mu.Unlock()
	return r.truncateLog(target)
}

// storageFailed fails the replica if err is a storage failure (not a
// protocol mismatch, nor the Manager closing) and reports whether it did.
func (r *replica) storageFailed(err error) bool {
	switch {
	case errors.Is(err, log.ErrTruncateBelowHighWatermark):
		// Under SyncAlways the leader lacks a record this replica saw
		// committed: an acknowledged record was lost. Retrying cannot
		// help (the leader would resend the truncation at once, for
		// ever): fail the replica, logged once and reported unhealthy.
	case errors.Is(err, errMismatch), errors.Is(err, log.ErrNotContiguous), errors.Is(err, log.ErrStaleEpoch),
		errors.Is(err, log.ErrCorruptBatch), errors.Is(err, log.ErrBatchTooLarge):
		switch {
		case errors.Is(err, log.ErrCorruptBatch):
			r.m.cfg.Logger.Error("replication: follower cannot apply push", "topic", r.topic, "partition", r.key.partition, "err", err)
		case errors.Is(err, log.ErrBatchTooLarge):
			r.m.cfg.Logger.Error("replication: follower cannot apply push: the leader's MaxBatchBytes is larger than this node's; every node needs the same",
				"topic", r.topic, "partition", r.key.partition, "err", err)
		}
		return false
	}
	r.failStorage(err)
	r.mu.Lock()
	r.mu.working = false
	r.mu.Unlock()
	return true
}

// failStorage fails the replica for a storage error, unless the Manager or
// the log is closing.
func (r *replica) failStorage(err error) {
	var out answers
	r.mu.Lock()
	if r.m.ctx.Err() == nil && !errors.Is(err, log.ErrClosed) {
		r.failLocked(err, &out)
	}
	r.mu.Unlock()
	out.deliver(r.m)
}

// confirmed records that the follower's log agrees with the leader of
// epoch up to end.
func (r *replica) confirmed(epoch int32, end int64) {
	r.mu.Lock()
	if r.mu.epoch == epoch && r.mu.role == roleFollower {
		r.mu.agreed = end
	}
	r.mu.Unlock()
}

// agreementKnown reports whether a push of the leader of epoch confirmed
// how far this replica's log agrees with the leader's.
func (r *replica) agreementKnown(epoch int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.epoch == epoch && r.mu.role == roleFollower && r.mu.agreed >= 0
}

// matchPushFollows reports whether items hold the first push of the match
// of generation gen (which confirms the agreement and carries a high
// watermark at least as recent as a high-watermark push before it).
func matchPushFollows(items []pushItem, gen uint32) bool {
	for i := range items {
		if items[i].gen == gen && items[i].flags&pushTruncate != 0 {
			return true
		}
	}
	return false
}

// setHW raises the follower's high watermark to the leader's, capped by
// how far its log is known to agree with the leader's: never over records
// of an older epoch that a truncation may still remove.
func (r *replica) setHW(hw int64, epoch int32) {
	r.mu.Lock()
	if r.mu.epoch == epoch && r.mu.role == roleFollower {
		hw = min(hw, r.mu.agreed)
	} else {
		hw = -1
	}
	r.mu.Unlock()
	if hw > r.log.HighWatermark() {
		_ = r.log.SetHighWatermark(hw) // only ErrClosed or a race with truncation: the next push retries
	}
}

// pushes counts the data pushes among items.
func pushes(items []pushItem) int {
	n := 0
	for i := range items {
		if items[i].flags&pushHWOnly == 0 {
			n++
		}
	}
	return n
}
