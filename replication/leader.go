package replication

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
)

// Flow control of the leader's pushes to one follower.
const (
	maxPushesInFlight = 32      // pushes sent and not yet acknowledged
	maxBytesInFlight  = 8 << 20 // their bytes
	catchUpReadBytes  = 1 << 20 // one catch-up push
	keptCatchUpBufs   = 4       // free catch-up buffers a Manager keeps
	maxRoundBytes     = 4 << 20 // one leader round (one wal write)
)

// messageSlack bounds what a message adds to the batches it carries
// (framing, item headers).
const messageSlack = 64 << 10

// LargestMessage is the size of the largest message replication sends
// (a leader round, a catch-up push, a forwarded append, the answer to a
// forwarded read) when Append takes batches of up to maxBatchBytes: a transport must carry it, or
// such a batch is written on its leader and never reaches a follower.
func LargestMessage(maxBatchBytes int) int {
	return max(maxRoundBytes, maxBatchBytes) + messageSlack
}

// fstate is what a partition leader knows of one follower in its epoch.
type fstate struct {
	st       followerState
	matched  bool   // the follower's log is known to be a prefix of ours up to sentEnd's start
	gen      uint32 // bumped at each (re)match; acks of older generations are ignored
	sentEnd  int64  // offsets before it are sent (or held by the follower)
	truncate bool   // the next push starts a match: truncate to sentEnd if longer, confirm agreement
	inflight []inflightPush
	inBytes  int
	// progressAt is the mono time of the last ack that made progress or of
	// the (re)match: a follower with pushes in flight and no progress for
	// retransmitAfter is rematched (its pushes or acks were lost).
	progressAt int64
	probeAt    int64
	hw         int64 // the follower's high watermark, as its last ack showed
	hwAt       int64 // mono time the high watermark was last pushed
	reset      bool  // the next push tells the follower to start its log over at sentEnd
	// confirmed: the follower acknowledged a push of its current match,
	// so st.logEnd is its own answer, given in order after whatever it
	// was applying before. Until then the high watermark does not count
	// it at the match point: the hello it was matched on may describe a
	// log that a step of an earlier epoch, still running on the follower,
	// then truncates.
	confirmed bool
	// rto is how long pushes in flight may go without progress before they
	// are given up and resent (a new generation: later answers to the old
	// pushes are ignored); 0 for the base, four ticks. It follows the round
	// trips the follower's answers take (twice the last), and doubles when
	// an answer to pushes already given up arrives (Karn's rule: the
	// follower is slow, not cut off), so that a follower farther away than
	// the base (a slow link, a long queue) is not resent to forever, each
	// answer ignored. Resends that hear nothing leave it: a follower cut
	// off is resent to as often as before once it is back. lateGen is the
	// last generation whose late answer doubled it.
	rto     int64
	lateGen uint32
}

type inflightPush struct {
	end   int64
	bytes int
	at    int64 // mono time sent
}

// timeout is the follower's resend timeout: its rto, or base.
func (f *fstate) timeout(base int64) int64 { return max(f.rto, base) }

// answeredLate doubles the resend timeout, up to limit, when an answer
// to pushes of generation gen, given up since, arrives: once per
// generation.
func (f *fstate) answeredLate(gen uint32, base, limit int64) {
	if gen == f.lateGen {
		return
	}
	f.lateGen = gen
	f.rto = min(2*f.timeout(base), max(limit, base))
}

// hwPushable reports whether a high-watermark push may go to the
// follower: it is matched and the first push of its match (pushTruncate,
// which truncates it and confirms where its log agrees with ours) is
// sent. Pushes to a follower arrive in order; one of a generation that
// arrives before its match push finds the follower not knowing where its
// log agrees, and the follower answers it "mismatch" with the log it had
// then. The match push would still apply, and the rematch that answer
// causes would order a truncation to the old log's agreement, below the
// high watermark the match push gave it: the follower would fail.
func (f *fstate) hwPushable() bool { return f.matched && !f.truncate }

func (f *fstate) windowOpen() bool {
	return len(f.inflight) < maxPushesInFlight && f.inBytes < maxBytesInFlight
}

func (f *fstate) sent(end int64, n int, now int64) {
	if len(f.inflight) == 0 {
		f.progressAt = now
	}
	f.sentEnd = end
	f.inflight = append(f.inflight, inflightPush{end, n, now})
	f.inBytes += n
}

// acked drops the pushes the follower's log end covers; if it covers any,
// the resend timeout becomes twice the round trip of the last of them, at
// least base (the timeout without answers to go by), at most limit.
func (f *fstate) acked(end, now, base, limit int64) {
	i := 0
	for i < len(f.inflight) && f.inflight[i].end <= end {
		f.inBytes -= f.inflight[i].bytes
		i++
	}
	if i > 0 {
		f.rto = max(base, min(2*(now-f.inflight[i-1].at), limit))
	}
	f.inflight = f.inflight[:copy(f.inflight, f.inflight[i:])]
}

// target is a follower a round is pushed to, with its generation.
type target struct {
	id  uint64
	gen uint32
}

// stampBatch writes the base offset and leader epoch into an encoded batch
// (they lie outside its checksum, see package log) and the producer's base
// sequence (inside it: the checksum is recomputed).
func stampBatch(b []byte, base int64, epoch int32) {
	binary.BigEndian.PutUint64(b[0:8], uint64(base))
	binary.BigEndian.PutUint32(b[12:16], uint32(epoch))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offsets in the batch header (package log's format, version 1).
const (
	batchCRCOffset  = 17
	batchCRCFrom    = 21
	batchSeqOffset  = 53
	batchHeaderSize = 61
)

func stampSequence(b []byte, seq int32) {
	binary.BigEndian.PutUint32(b[batchSeqOffset:], uint32(seq))
	binary.BigEndian.PutUint32(b[batchCRCOffset:], crc32.Checksum(b[batchCRCFrom:], castagnoli))
}

// maxAppendsInFlight bounds the appends (leader rounds or follower appends) a
// replica has queued to its log and not yet seen acknowledged.
const maxAppendsInFlight = 16

// inflight is an append a replica queued to its log, and what to do once
// the log acknowledges it (completer): for a leader round, answer or park
// its producers; for a follower, take the high watermark and answer the
// leader. Items without an append (a follower's answer to a probe, say)
// wait for the appends before them: answers leave in order.
type inflight struct {
	pending log.Pending // zero for nothing to wait for
	start   int64       // mono time it was queued
	epoch   int32

	// leader round
	reqs []*appendReq

	// follower
	follower bool
	leader   uint64
	gen      uint32
	status   byte  // the answer's status
	answer   bool  // send the answer (else only take hw)
	hw       int64 // the leader's high watermark to take, -1 for none
	pushes   int   // data pushes the append took
}

// leaderStep runs one leader round: it takes the queued batches, gives
// them offsets, pushes them to the followers that are caught up (before
// its own write, so that their writes and syncs overlap its own), and
// queues them to the log as one append. It does not wait for the log: the
// completer (complete) answers or parks the producers once the round is
// durable, while the next rounds are assigned, pushed and queued, so that
// a sync covers every round queued while the previous one ran, and
// followers receive batches without waiting for the leader's sync. With
// nothing queued it sends catch-up data to followers that are behind.
// Called with mu held; returns with it released, and whether to run again.
func (r *replica) leaderStep() bool {
	m := r.m
	epoch := r.mu.epoch
	if !r.mu.ready {
		return r.beginEpoch(epoch)
	}
	var out answers
	reqs := r.mu.queue
	r.mu.queue = nil
	round, size := r.assignLocked(reqs, &out)
	if len(round) == 0 {
		need := r.catchUpNeededLocked()
		if !need {
			r.mu.working = false
		}
		r.mu.Unlock()
		out.deliver(m)
		if need {
			r.catchUp()
		}
		return need
	}
	base := round[0].base
	now := m.mono()
	var targets []target
	for id, f := range r.mu.followers {
		if f.matched && !f.truncate && f.sentEnd == base && f.windowOpen() {
			f.sent(r.mu.nextOffset, size, now)
			targets = append(targets, target{id, f.gen})
		}
	}
	hw := r.log.HighWatermark()
	r.mu.Unlock()
	out.deliver(m)
	out = out[:0]

	buf := make([]byte, 0, size)
	for _, q := range round {
		start := len(buf)
		buf = append(buf, q.batch...)
		stampBatch(buf[start:], q.base, epoch)
	}
	for _, t := range targets {
		m.peer(t.id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition, epoch: epoch,
			gen: t.gen, prevEnd: base, hw: hw, batches: buf})
	}
	start := m.mono()
	p, err := r.log.EnqueueFollower(m.ctx, buf)

	r.mu.Lock()
	if err != nil {
		// Nothing or part of the round reached the wal: the storage
		// failed or the Manager closes; either way no later round can be
		// written.
		r.roundFailedLocked(round, err, &out)
		r.mu.working = false
		r.mu.Unlock()
		out.deliver(m)
		return false
	}
	r.queueInflightLocked(&inflight{reqs: round, pending: p, epoch: epoch, start: start})
	r.mu.Unlock()
	return true
}

// queueInflightLocked adds an item to the in-flight list and makes sure
// a completer runs.
func (r *replica) queueInflightLocked(it *inflight) {
	r.mu.inflight = append(r.mu.inflight, it)
	if !r.mu.completing && r.m.spawn(r.complete) {
		r.mu.completing = true
	}
}

// complete finishes the items of the in-flight list in order, as the log
// acknowledges their appends. It runs while items are in flight (at most
// one completer a replica) and exits when none is left.
func (r *replica) complete() {
	m := r.m
	for {
		r.mu.Lock()
		if len(r.mu.inflight) == 0 {
			r.mu.completing = false
			r.mu.Unlock()
			return
		}
		it := r.mu.inflight[0]
		r.mu.Unlock()

		err := it.pending.Wait(m.ctx)
		if it.follower {
			r.followerDone(it, err)
		}
		var out answers
		r.mu.Lock()
		r.mu.inflight[0] = nil
		r.mu.inflight = r.mu.inflight[1:]
		if r.mu.progress != nil {
			close(r.mu.progress)
			r.mu.progress = nil
		}
		if !it.follower {
			m.stats.leaderRounds.Add(1)
			m.stats.leaderBatches.Add(int64(len(it.reqs)))
			m.stats.leaderNanos.Add(m.mono() - it.start)
			r.roundStats(it.reqs, it.start)
			if err != nil {
				r.roundFailedLocked(it.reqs, err, &out)
			} else {
				r.roundWrittenLocked(it, &out)
			}
		}
		r.mu.Unlock()
		out.deliver(m)
	}
}

// ackOKLocked answers q's append OK, unless its acknowledgement rests on
// this leader alone (AcksLeader, or AcksAll with the ISR down to this
// leader) and this node is out of touch with the controller, which may
// have fenced it and given the partition to another replica: then q is
// refused as by a node that is not the leader. Its producer asks again
// (the batch is written; the retry is deduplicated) until this node is in
// touch again, or another leads. With followers in the ISR an AcksAll
// append needs no such check: they stop confirming a superseded leader.
func (r *replica) ackOKLocked(q *appendReq, out *answers) {
	if q.acks != AcksNone && (q.acks == AcksLeader || len(r.mu.part.ISR) <= 1) && !r.m.cfg.Meta.InSession() {
		out.add(q, codeNotLeader, 0, 0)
		return
	}
	out.ok(q)
}

// roundWrittenLocked answers or parks the batches of a round the log
// acknowledged, moves the high watermark (the leader's own log end is part
// of it) and starts the worker if followers wait for catch-up data.
func (r *replica) roundWrittenLocked(rd *inflight, out *answers) {
	stillLeader := r.mu.role == roleLeader && r.mu.epoch == rd.epoch && !r.mu.superseded
	for _, q := range rd.reqs {
		switch {
		case q.acks == AcksNone:
		case !stillLeader:
			// Leadership moved while the round was written: the new leader
			// holds the batch (then deduplicates the retry) or not.
			out.add(q, codeNotLeader, r.mu.leader, r.mu.epoch)
		case q.acks == AcksLeader:
			r.ackOKLocked(q, out)
		default:
			r.mu.hwWaiters = append(r.mu.hwWaiters, q)
		}
	}
	if len(r.mu.durWaiters) > 0 {
		durable := r.log.LogEndOffset()
		kept := r.mu.durWaiters[:0]
		for _, q := range r.mu.durWaiters {
			switch {
			case q.last >= durable:
				kept = append(kept, q)
			case stillLeader:
				r.ackOKLocked(q, out)
			default:
				out.add(q, codeNotLeader, r.mu.leader, r.mu.epoch)
			}
		}
		clear(r.mu.durWaiters[len(kept):])
		r.mu.durWaiters = kept
	}
	r.advanceHWLocked(out)
	if r.catchUpNeededLocked() {
		r.kickLocked()
	}
}

// awaitRoundLocked waits, without mu, until the completer finished a
// round (or the Manager closes). Called with mu held and rounds in
// flight; returns with mu released.
func (r *replica) awaitRoundLocked() {
	if r.mu.progress == nil {
		r.mu.progress = make(chan struct{})
	}
	ch := r.mu.progress
	r.mu.Unlock()
	select {
	case <-ch:
	case <-r.m.ctx.Done():
	}
}

// roundStats counts the time the batches of a round written from start
// until now waited for it, and stamps them written.
func (r *replica) roundStats(round []*appendReq, start int64) {
	now, queued := r.m.mono(), int64(0)
	for _, q := range round {
		if q.queuedAt > 0 {
			queued += start - q.queuedAt
		}
		q.writtenAt = now
	}
	r.m.stats.queueNanos.Add(queued)
}

// roundFailedLocked answers a round whose write failed: a storage failure
// fails the replica; a closing Manager (ctx) just stops.
func (r *replica) roundFailedLocked(round []*appendReq, err error, out *answers) {
	code := failureCode(err)
	if errors.Is(err, context.Canceled) || errors.Is(err, log.ErrClosed) {
		code = codeRetry
	} else {
		r.failLocked(err, out)
	}
	for _, q := range round {
		if q.acks != AcksNone {
			out.add(q, code, 0, 0)
		}
	}
	// Retries of batches in this round or a later one: none is durable.
	for _, q := range r.mu.durWaiters {
		out.add(q, code, 0, 0)
	}
	r.mu.durWaiters = nil
}

// beginEpoch starts this replica's leadership in its log and probes the
// followers. Called with mu held; returns with it released.
func (r *replica) beginEpoch(epoch int32) bool {
	r.mu.Unlock()
	err := r.log.BeginEpoch(epoch)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.role != roleLeader || r.mu.epoch != epoch {
		return true
	}
	if err != nil {
		var out answers
		r.failLocked(err, &out)
		r.mu.working = false
		r.mu.Unlock()
		out.deliver(r.m)
		r.mu.Lock()
		return false
	}
	now := r.m.mono()
	r.mu.ready = true
	r.mu.nextOffset = r.log.LogEndOffset()
	r.mu.epochStart = r.mu.nextOffset
	r.mu.ledSince = now
	for id, f := range r.mu.followers {
		f.probeAt = now
		// Generation 0 is left to the hellos followers send unasked
		// (see onAck): answers to probes carry generation 1 or more.
		f.gen = 1
		r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition, epoch: epoch,
			gen: f.gen, flags: pushProbe})
	}
	return true
}

// assignLocked checks and gives offsets to queued batches; it returns
// those to write and their total size. Duplicates are answered (or parked
// for the high watermark) with their first offsets.
func (r *replica) assignLocked(reqs []*appendReq, out *answers) ([]*appendReq, int) {
	var round []*appendReq
	size := 0
	isrOK := len(r.mu.part.ISR) >= r.mu.minISR && !r.mu.isrFloor
	durable := r.log.LogEndOffset()
	for i, q := range reqs {
		if len(round) > 0 && size+len(q.batch) > maxRoundBytes {
			r.mu.queue = append(reqs[i:len(reqs):len(reqs)], r.mu.queue...)
			break
		}
		ps := r.mu.producers[q.pid]
		if ps == nil {
			ps = &producerState{}
			r.mu.producers[q.pid] = ps
		}
		crc := batchCRC(q.batch)
		prev, dup, err := ps.check(q.pepoch, q.firstSeq, q.lastSeq, crc)
		switch {
		case err != nil:
			out.add(q, codeSequence, 0, 0)
			continue
		case dup:
			// Checked before the ISR: a retry of a batch already
			// committed (its answer was lost) is answered so whatever
			// the ISR is now.
			q.base, q.last = prev.baseOffset, prev.lastOffset
			switch {
			case q.acks == AcksAll && q.last >= r.log.HighWatermark():
				if !isrOK {
					out.add(q, codeNotEnoughReplicas, 0, 0)
					break
				}
				r.mu.hwWaiters = append(r.mu.hwWaiters, q)
			case q.acks == AcksLeader && q.last >= durable:
				// A retry of a batch in a round still being written (its
				// sync outlasted the producer's resend timeout): answered
				// when that round ends, as the first attempt is.
				r.mu.durWaiters = append(r.mu.durWaiters, q)
			default:
				r.ackOKLocked(q, out)
			}
			continue
		case q.acks == AcksAll && !isrOK:
			out.add(q, codeNotEnoughReplicas, 0, 0)
			continue
		}
		q.base = r.mu.nextOffset
		q.last = q.base + int64(q.count) - 1
		r.mu.nextOffset = q.last + 1
		ps.record(q.pepoch, seqBatch{firstSeq: q.firstSeq, lastSeq: q.lastSeq, baseOffset: q.base, lastOffset: q.last, crc: crc})
		r.producersRecordedLocked(len(q.batch), r.mu.nextOffset)
		if q.acks == AcksNone {
			out.ok(q)
		}
		round = append(round, q)
		size += len(q.batch)
	}
	return round, size
}

// catchUpNeededLocked reports whether a follower waits for data the
// leader's log holds (or for a truncation order) and may receive it.
func (r *replica) catchUpNeededLocked() bool {
	durable := r.log.LogEndOffset()
	for _, f := range r.mu.followers {
		if f.matched && (f.truncate || f.sentEnd < durable) && f.windowOpen() {
			return true
		}
	}
	return false
}

// catchUp sends followers that are behind what the leader's log holds
// (durably) the batches they miss, read back from the log, while their
// windows allow. Called without mu.
func (r *replica) catchUp() {
	for range 64 {
		r.mu.Lock()
		if r.mu.role != roleLeader || !r.mu.ready || r.mu.closed {
			r.mu.Unlock()
			return
		}
		durable := r.log.LogEndOffset()
		var id uint64
		var f *fstate
		for fid, ff := range r.mu.followers {
			if ff.matched && (ff.truncate || ff.sentEnd < durable) && ff.windowOpen() {
				id, f = fid, ff
				break
			}
		}
		if f == nil {
			r.mu.Unlock()
			return
		}
		from, gen, epoch := f.sentEnd, f.gen, r.mu.epoch
		r.mu.Unlock()

		var data []byte
		var err error
		var bp *[]byte
		if from < durable { // else a truncation order alone: nothing to read
			bp = r.catchUpBuf()
			data, err = r.log.ReadBatches((*bp)[:0], from, durable, catchUpReadBytes)
		}
		end := from
		if err == nil && len(data) > 0 {
			b, _, serr := log.SplitBatch(data)
			if serr != nil || b.BaseOffset() != from {
				err = errors.New("replication: catch-up read does not start at a batch boundary")
			} else {
				end = r.batchesEnd(data)
			}
		}

		r.readFailed(err)
		r.mu.Lock()
		if f.gen == gen && f.sentEnd == from && r.mu.epoch == epoch && r.mu.role == roleLeader {
			if err != nil {
				// Retention removed what the follower needs, or the read
				// failed: it stays unmatched and is probed again later.
				r.m.cfg.Logger.Warn("replication: cannot serve follower", "topic", r.topic,
					"partition", r.key.partition, "follower", id, "from", from, "err", err)
				f.matched = false
				r.mu.Unlock()
				r.m.putCatchUpBuf(bp)
				return
			}
			flags := byte(0)
			if f.truncate {
				flags = pushTruncate
			}
			if f.reset {
				flags |= pushReset
			}
			f.truncate, f.reset = false, false
			f.sent(end, len(data), r.m.mono())
			r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition, epoch: epoch,
				gen: gen, flags: flags, prevEnd: from, hw: r.log.HighWatermark(), batches: data})
		}
		r.mu.Unlock()
		r.m.putCatchUpBuf(bp) // the push copied data
	}
	// More to send than one pass allows: run the worker again.
	r.mu.Lock()
	if r.catchUpNeededLocked() {
		r.kickLocked()
	}
	r.mu.Unlock()
}

// catchUpBuf returns a buffer of catchUpReadBytes capacity for a
// catch-up read, recycled (a fresh 1 MiB buffer per push costs more CPU,
// in zeroing and returning it to the OS, than the push itself).
func (r *replica) catchUpBuf() *[]byte {
	select {
	case bp := <-r.m.catchUpBufs:
		return bp
	default:
		b := make([]byte, 0, catchUpReadBytes)
		return &b
	}
}

// putCatchUpBuf gives a buffer of catchUpBuf back once nothing refers to
// it (a read that outgrew it returned another array, which is the GC's);
// nil is ignored.
func (m *Manager) putCatchUpBuf(bp *[]byte) {
	if bp == nil {
		return
	}
	select {
	case m.catchUpBufs <- bp:
	default:
	}
}

// batchesEnd returns the offset after the last batch of raw.
func (r *replica) batchesEnd(raw []byte) int64 {
	end := int64(-1)
	for rest := raw; len(rest) > 0; {
		b, next, err := log.SplitBatch(rest)
		if err != nil {
			break
		}
		end = b.NextOffset()
		rest = next
	}
	return end
}

// onAck takes a follower's acknowledgement.
func (r *replica) onAck(from uint64, a *ackItem) {
	var out answers
	r.mu.Lock()
	defer func() {
		r.mu.Unlock()
		out.deliver(r.m)
	}()
	if r.mu.role != roleLeader || r.mu.closed {
		return
	}
	if a.status == ackStale && a.epoch > r.mu.epoch {
		// A follower knows a newer leader: stop acknowledging; the
		// metadata will tell who leads.
		r.mu.superseded = true
		r.failLeaderWorkLocked(&out, 0, a.epoch)
		return
	}
	f := r.mu.followers[from]
	if f == nil || a.epoch != r.mu.epoch || !r.mu.ready {
		return
	}
	now := r.m.mono()
	switch a.status {
	case ackOK:
		if f.matched && a.gen < f.gen && a.gen != 0 {
			// An answer to pushes given up since: slow, not lost.
			f.answeredLate(a.gen, r.m.retransmitAfter(), r.m.maxResendTimeout())
		}
		if !f.matched || a.gen != f.gen {
			return
		}
		f.confirmed = true
		f.st.observeFetch(now, a.logEnd, r.log.LogEndOffset())
		f.acked(a.logEnd, now, r.m.retransmitAfter(), r.m.maxResendTimeout())
		if a.hw > f.hw && r.m.draining.Load() {
			defer r.m.notifyChanged() // Shutdown may wait for it (a replica's mu may be held when taking Manager.mu)
		}
		f.hw = max(f.hw, a.hw)
		f.progressAt = now
		r.advanceHWLocked(&out)
		if !r.inISRLocked(from) {
			r.maybeAlterISRLocked(now, &out)
		}
		if r.catchUpNeededLocked() {
			r.kickLocked()
		}
	case ackHello, ackMismatch:
		// A hello of generation 0 is sent unasked by a replica that starts
		// following this epoch (after a restart, say): whatever it
		// confirmed before is forgotten, and its log may have changed, so
		// it is matched again even if it was matched. The transport keeps
		// each pair's messages in order: it cannot be older than an answer
		// already taken from the same replica.
		if f.matched && a.gen != f.gen && (a.status != ackHello || a.gen != 0) {
			return
		}
		r.matchLocked(from, f, a.lastEpoch, a.logEnd, now)
		r.advanceHWLocked(&out)
	}
}

// matchLocked finds where the follower's log stops agreeing with the
// leader's (Kafka's OffsetsForLeaderEpoch: the end of the follower's last
// epoch in the leader's log, capped by the follower's end) and starts
// sending from there, telling the follower to truncate first if it holds
// more.
//
// If the leader's log lacks the follower's last epoch (a leader of an
// epoch in between wrote records this leader never had), the answer is
// the end of an earlier epoch, and the follower's own end of that epoch
// may lie below it: its records of the later epochs there differ from
// ours. Only the follower knows where they start (Kafka's KIP-279
// follower step), so it is sent the epoch (pushMatchEpoch), truncates to
// its own end of it, and answers again with its new last epoch; until
// then it stays unmatched: nothing is sent to it and the high watermark
// counts nothing of it.
func (r *replica) matchLocked(id uint64, f *fstate, lastEpoch int32, logEnd, now int64) {
	t := min(logEnd, r.mu.nextOffset)
	answer := log.UndefinedEpoch
	if lastEpoch != log.UndefinedEpoch {
		if e, end := r.log.EndOffsetForEpoch(lastEpoch); e != log.UndefinedEpoch {
			t, answer = min(t, end), e
		}
	}
	reset := false
	start := r.log.LogStartOffset()
	if t < start || start > 0 && lastEpoch != log.UndefinedEpoch && lastEpoch < r.firstEpoch() {
		// Retention removed what the follower lacks: it starts its log
		// over at our log start (Kafka's truncate-fully-and-start-at).
		// So does a follower whose latest epoch is older than any our log
		// still knows (retention removed them): we cannot tell whether
		// what it holds below our log start is what we held there, or
		// records of an epoch we never had, never committed, which it
		// would keep under the high watermark.
		r.m.cfg.Logger.Info("replication: follower is behind the log start; it restarts its log there",
			"topic", r.topic, "partition", r.key.partition, "follower", id, "end", t, "start", start, "epoch", lastEpoch)
		t, reset = start, true
	}
	f.gen++
	f.inflight, f.inBytes = f.inflight[:0], 0
	f.progressAt = now
	f.confirmed = false
	if answer != log.UndefinedEpoch && answer != lastEpoch && !reset {
		// (A follower that starts its log over keeps nothing to match.)
		f.matched, f.truncate = false, false
		f.probeAt = now // resent as a probe if the answer is lost
		r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition, epoch: r.mu.epoch,
			gen: f.gen, flags: pushMatchEpoch, prevEnd: t, matchEpoch: answer})
		return
	}
	f.matched = true
	f.sentEnd = t
	f.reset = reset
	f.hw = 0 // a restarted follower's high watermark may have gone back: learn it from its next answer
	// Always send a first push from t, empty if need be: it truncates the
	// follower if it holds more, and confirms to it that its log agrees
	// with ours below t (it takes our high watermark only that far).
	f.truncate = true
	f.st.logEnd = t
	f.st.observeFetch(now, t, r.log.LogEndOffset())
	r.kickLocked()
}

// firstEpoch is the oldest epoch of the log's leader-epoch cache, or
// log.UndefinedEpoch.
func (r *replica) firstEpoch() int32 {
	if es := r.log.Epochs(); len(es) > 0 {
		return es[0].Epoch
	}
	return log.UndefinedEpoch
}

// countedISRLocked is the ISR the high watermark is computed over: the
// partition's ISR without members that are draining (controlled shutdown).
// A draining node can lead nothing until it registers again, and its
// registration removes it from every ISR, so no election can pick a
// replica that lacks what the high watermark passed; without this, a
// leadership handed over by a controlled shutdown would wait for the
// stopped node to be shrunk out before committing anything.
//
// It also holds the members a pending AlterISR adds (Kafka's maximal ISR,
// KIP-497): the controller may apply the addition, and elect the new
// member (a preferred leader is handed its leadership back at once),
// before this leader learns of it; a high watermark computed without it
// meanwhile could pass records it lacks, and they would be lost.
func (r *replica) countedISRLocked() []uint64 {
	isr := r.mu.part.ISR
	if add := r.pendingAddsLocked(); len(add) > 0 {
		isr = append(slices.Clone(isr), add...)
	}
	st := r.m.cfg.Meta.State()
	for i, id := range isr {
		if n, ok := st.Node(id); ok && n.Draining && id != r.m.cfg.ID {
			out := append(make([]uint64, 0, len(isr)), isr[:i]...)
			for _, id := range isr[i+1:] {
				if n, ok := st.Node(id); !ok || !n.Draining {
					out = append(out, id)
				}
			}
			return out
		}
	}
	return isr
}

// pendingAddsLocked returns the members that the last AlterISR asked to
// add and that the metadata does not show yet. They count until the
// partition's record moves past the epoch the request was made at (the
// change applied or something else did), until the request is refused
// for good, or, should its outcome stay unknown (a request that timed
// out and was never applied), for twice the request's own timeout.
func (r *replica) pendingAddsLocked() []uint64 {
	if len(r.mu.isrAdding) == 0 || r.mu.part.PartitionEpoch != r.mu.isrAddingPE ||
		r.m.mono()-r.mu.isrAddingAt > 2*int64(r.m.alterISRTimeout()) {
		return nil
	}
	var out []uint64
	for _, id := range r.mu.isrAdding {
		if !slices.Contains(r.mu.part.ISR, id) {
			out = append(out, id)
		}
	}
	return out
}

// advanceHWLocked moves the high watermark to the smallest log end over
// the ISR, tells the followers, and answers the AcksAll batches it passed.
func (r *replica) advanceHWLocked(out *answers) {
	if r.mu.role != roleLeader || !r.mu.ready || r.mu.superseded {
		return
	}
	self := r.m.cfg.ID
	hw, ok := highWatermark(self, r.log.LogEndOffset(), r.countedISRLocked(), r.mu.minISR, func(id uint64) (int64, bool) {
		f := r.mu.followers[id]
		if f == nil || !f.matched || !f.confirmed {
			return 0, false
		}
		return f.st.logEnd, true
	})
	cur := r.log.HighWatermark()
	if ok && hw > cur {
		if err := r.log.SetHighWatermark(hw); err == nil {
			cur = hw
			now := r.m.mono()
			for id, f := range r.mu.followers {
				// A follower whose match push is still to be sent learns
				// the high watermark from it: a push of the generation
				// before it would find the follower not knowing where its
				// log agrees and make it ask for a match (see hwPushable).
				if f.hwPushable() {
					f.hwAt = now
					r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition,
						epoch: r.mu.epoch, gen: f.gen, flags: pushHWOnly, hw: hw})
				}
			}
		}
	}
	kept := r.mu.hwWaiters[:0]
	now := r.m.mono()
	for _, q := range r.mu.hwWaiters {
		if q.last < cur {
			if q.writtenAt > 0 {
				r.m.stats.hwNanos.Add(now - q.writtenAt)
				r.m.stats.hwBatches.Add(1)
			}
			r.ackOKLocked(q, out)
		} else {
			kept = append(kept, q)
		}
	}
	clear(r.mu.hwWaiters[len(kept):])
	r.mu.hwWaiters = kept
}

// followersKnowHWLocked reports whether every matched follower the high
// watermark counts has acknowledged it (see Manager.awaitFollowersKnowHW).
func (r *replica) followersKnowHWLocked() bool {
	if r.mu.role != roleLeader || !r.mu.ready || r.mu.superseded || r.mu.closed || r.mu.failed != nil {
		return true
	}
	hw := r.log.HighWatermark()
	for _, id := range r.countedISRLocked() {
		if f := r.mu.followers[id]; f != nil && f.matched && f.hw < hw {
			return false
		}
	}
	return true
}

// tickLeaderLocked runs the leader's timed duties: retransmission to
// followers whose pushes or acks were lost, probes of unmatched followers,
// and ISR changes.
//
// It also recomputes the high watermark: what it counts can change without
// an acknowledgement or a partition record (an ISR member starts draining:
// see countedISRLocked), and an idle partition whose followers all left by
// controlled shutdown would otherwise keep its last records uncommitted.
func (r *replica) tickLeaderLocked(now, retransmitAfter int64, out *answers) {
	if r.mu.role != roleLeader || !r.mu.ready || r.mu.superseded {
		return
	}
	r.advanceHWLocked(out)
	durable := r.log.LogEndOffset()
	for id, f := range r.mu.followers {
		switch {
		case !f.matched:
			if now-f.probeAt >= retransmitAfter {
				f.probeAt = now
				r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition,
					epoch: r.mu.epoch, gen: f.gen, flags: pushProbe})
			}
		case len(f.inflight) > 0 && now-f.progressAt >= f.timeout(retransmitAfter):
			// Go back to what the follower acknowledged; if it holds more
			// (an ack was lost) it answers the next push with a mismatch
			// and is rematched. Were the answers only slow, a late one
			// makes the next wait longer (fstate.rto).
			f.gen++
			f.sentEnd = f.st.logEnd
			f.inflight, f.inBytes = f.inflight[:0], 0
			f.progressAt = now
			r.kickLocked()
		case !f.hwPushable():
			// The worker sends the match push, high watermark included.
		case !f.confirmed:
			// Matched, nothing in flight, and no answer to its match: the
			// answer was lost after the pushes were given up
			// (retransmission finds nothing to resend at our end). A
			// high-watermark push makes it answer again, in order after
			// what it applied, and so counts it.
			if now-f.hwAt >= retransmitAfter {
				f.hwAt = now
				r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition,
					epoch: r.mu.epoch, gen: f.gen, flags: pushHWOnly, hw: r.log.HighWatermark()})
			}
		case f.st.logEnd >= durable:
			// Nothing to send: an idle follower is caught up. Make sure it
			// learned the high watermark (the push may have been lost).
			f.st.observeFetch(now, f.st.logEnd, durable)
			if hw := r.log.HighWatermark(); f.hw < hw && now-f.hwAt >= retransmitAfter {
				f.hwAt = now
				r.m.peer(id).push(&pushItem{topicID: r.key.topicID, partition: r.key.partition,
					epoch: r.mu.epoch, gen: f.gen, flags: pushHWOnly, hw: hw})
			}
		}
	}
	r.maybeAlterISRLocked(now, out)
}

// keepISRFloorLocked returns the ISR to ask for, isr (in part.Replicas
// order), topped up to MinInSyncReplicas members with lagging members of
// the current ISR: those the high watermark counts (never a draining
// one, which it leaves out, so which may lack committed records), the
// eligible ones first, then the longest logs. It notes whether it kept
// any (mu.isrFloor: AcksAll is then refused as with a short ISR, and the
// AcksAll appends waiting for the high watermark are answered so at
// once). Kafka shrinks below MinInSyncReplicas and then may have to elect
// a leader that lost records (KIP-966): with the ISR down to the leader
// alone, a crash of the leader (its unsynced records lost, under
// SyncNever) leaves it the only replica eligible, and it comes back
// without records the removed followers still hold, acknowledged while
// they were in the ISR. Kept, they stay eligible: the high watermark
// cannot pass what a counted member holds, so each holds every committed
// record.
func (r *replica) keepISRFloorLocked(isr, lag []uint64, out *answers) []uint64 {
	was := r.mu.isrFloor
	r.mu.isrFloor = false
	if len(isr) < r.mu.minISR && len(lag) > 0 {
		counted := r.countedISRLocked()
		st := r.m.cfg.Meta.State()
		var keep []uint64
		for _, id := range lag {
			if slices.Contains(counted, id) {
				keep = append(keep, id)
			}
		}
		rank := func(id uint64) (eligible bool, end int64) {
			n, ok := st.Node(id)
			end = -1
			if f := r.mu.followers[id]; f != nil && f.matched {
				end = f.st.logEnd
			}
			return ok && n.Eligible(), end
		}
		slices.SortStableFunc(keep, func(a, b uint64) int {
			ea, la := rank(a)
			eb, lb := rank(b)
			if ea != eb {
				if ea {
					return -1
				}
				return 1
			}
			return cmp.Compare(lb, la)
		})
		keep = keep[:min(len(keep), r.mu.minISR-len(isr))]
		if len(keep) > 0 {
			r.mu.isrFloor = true
			in := append(slices.Clone(isr), keep...)
			isr = isr[:0:0]
			for _, id := range r.mu.part.Replicas {
				if slices.Contains(in, id) {
					isr = append(isr, id)
				}
			}
		}
	}
	if r.mu.isrFloor && !was {
		r.failHWWaitersLocked(out)
	}
	return isr
}

// failHWWaitersLocked answers the AcksAll appends waiting for the high
// watermark NotEnoughReplicas: the ISR cannot commit them now.
func (r *replica) failHWWaitersLocked(out *answers) {
	for _, q := range r.mu.hwWaiters {
		out.add(q, codeNotEnoughReplicas, 0, 0)
	}
	r.mu.hwWaiters = nil
}

// laggingLocked returns the ISR members that have not caught up for
// ReplicaLagTime as of now: those a leader shrinks out.
func (r *replica) laggingLocked(now int64) []uint64 {
	return laggingReplicas(now, int64(r.m.cfg.ReplicaLagTime), r.mu.ledSince, r.m.cfg.ID, r.mu.part.ISR,
		func(id uint64) (followerState, bool) {
			f := r.mu.followers[id]
			if f == nil || !f.matched {
				return followerState{}, false
			}
			return f.st, true
		})
}

// maybeAlterISRLocked asks the controller to shrink lagging followers out
// of the ISR and to add caught-up ones back, one request at a time.
func (r *replica) maybeAlterISRLocked(now int64, out *answers) {
	if r.mu.isrBusy || r.mu.superseded || !r.mu.ready {
		return
	}
	part := r.mu.part
	lag := r.laggingLocked(now)
	hw := r.log.HighWatermark()
	st := r.m.cfg.Meta.State()
	var isr []uint64
	for _, id := range part.Replicas {
		in := slices.Contains(part.ISR, id)
		switch {
		case id == r.m.cfg.ID:
			isr = append(isr, id)
		case in && !slices.Contains(lag, id):
			isr = append(isr, id)
		case !in:
			// Only a follower that may join (Kafka's KIP-841): the
			// controller refuses the whole request if one may not (fenced,
			// draining, unhealthy), and a fenced node may well go on
			// following, caught up, until it registers again.
			n, known := st.Node(id)
			if f := r.mu.followers[id]; f != nil && f.matched && f.confirmed && canJoinISR(f.st, hw, r.mu.epochStart, now, int64(r.m.cfg.ReplicaLagTime)) && known && n.Eligible() {
				isr = append(isr, id)
			}
		}
	}
	isr = r.keepISRFloorLocked(isr, lag, out)
	if slices.Equal(isr, part.ISR) {
		return
	}
	r.mu.isrBusy = true
	epoch, pepoch := part.LeaderEpoch, part.PartitionEpoch
	var adding []uint64
	for _, id := range isr {
		if !slices.Contains(part.ISR, id) {
			adding = append(adding, id)
		}
	}
	if len(adding) > 0 {
		r.mu.isrAdding, r.mu.isrAddingPE, r.mu.isrAddingAt = adding, pepoch, now
	}
	alter := r.m.cfg.Meta.AlterISR
	if h := r.m.alterISRHook.Load(); h != nil {
		alter = *h
	}
	ok := r.m.spawn(func() {
		ctx, cancel := context.WithTimeout(r.m.ctx, r.m.alterISRTimeout())
		_, err := alter(ctx, r.topic, r.key.topicID, r.key.partition, epoch, pepoch, isr)
		cancel()
		if err != nil {
			r.m.cfg.Logger.Info("replication: ISR change refused", "topic", r.topic, "partition", r.key.partition, "isr", isr, "err", err)
		} else {
			r.m.cfg.Logger.Info("replication: ISR changed", "topic", r.topic, "partition", r.key.partition, "isr", isr, "epoch", epoch)
		}
		r.mu.Lock()
		r.mu.isrBusy = false
		if errors.Is(err, meta.ErrInvalidArgument) && r.mu.isrAddingPE == pepoch {
			r.mu.isrAdding = nil // refused for good: nothing was added
		}
		var out answers
		r.advanceHWLocked(&out)
		r.mu.Unlock()
		out.deliver(r.m)
	})
	if !ok {
		r.mu.isrBusy = false
		r.mu.isrAdding = nil
	}
}
