package replication

import (
	"fmt"
	"slices"
	"sync"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// call is one Append on its way to the partition's leader. It is sent,
// answered "retry" (not the leader, leader not ready), sent again with a
// new attempt number, until answered for good; answers to older attempts
// are ignored. Every attempt carries the same producer sequence, so a
// leader that already holds the batch answers with its offsets.
//
// A call about to be sent for the first time takes along the calls
// submitted right after it that wait to be sent too (see joinLocked): its
// batch becomes one batch of all their records, and the calls it took
// (joined) are answered with it, each with its own part of the offsets.
// From then on it is sent as one, under its own sequence and request ID.
type call struct {
	p        *producer
	batch    []byte
	firstSeq int32
	lastSeq  int32
	count    int32 // records in batch: its own and the joined calls'
	own      int32 // records of this call's Append
	acks     Acks
	reqID    uint64
	n        uint64 // submission order in its producer

	// under p.mu
	joined []*call // calls this one took along, in sequence order
	unit   *call   // the call this one was joined to, nil if none

	attempt   uint64
	sent      bool
	sentAt    int64 // mono
	notBefore int64 // mono: not resent before
	target    uint64
	// elsewhere: an attempt went to another node than target.
	elsewhere bool
	abandoned bool
	finished  bool

	done       chan struct{}
	base, last int64
	err        error
}

// producer sends this node's appends to one partition: it numbers the
// batches (the producer sequence), sends them to the leader the metadata
// names within a window of maxInFlight (see pickLocked), and resends them
// on a leader change, a "retry" answer or a lost message.
type producer struct {
	m     *Manager
	key   pkey
	topic string
	mu    struct {
		sync.Mutex
		leader    uint64
		epoch     int32
		nextSeq   int32
		submitted uint64 // calls submitted so far
		// short: the leader answered an AcksAll call that the ISR is
		// below MinInSyncReplicas, first at mono time shortAt, and no
		// AcksAll call succeeded nor did the metadata show the ISR back
		// since: the shortage Append waits out for ReplicaLagTime.
		short   bool
		shortAt int64
		// pepoch: the partition record (PartitionEpoch) isrChanged last
		// acted on; older or equal ones changed nothing for this partition.
		pepoch int32
		calls  []*call // outstanding, in submission order
		dead   error   // the topic is gone: fail everything
	}
}

// submit stamps the call's sequence and sends it when the window allows.
func (p *producer) submit(c *call) error {
	p.mu.Lock()
	if p.mu.dead != nil {
		err := p.mu.dead
		p.mu.Unlock()
		return err
	}
	c.own = c.count
	c.firstSeq = p.mu.nextSeq
	c.lastSeq = lastSeqOf(c.firstSeq, c.count)
	p.mu.nextSeq = nextSeq(c.lastSeq)
	c.n = p.mu.submitted
	p.mu.submitted++
	stampSequence(c.batch, c.firstSeq)
	p.mu.calls = append(p.mu.calls, c)
	send := p.pickLocked(p.m.mono(), nil)
	p.mu.Unlock()
	p.send(send)
	return nil
}

// pickLocked marks the calls to send now: unsent ones, in order, among
// those submitted fewer than maxInFlight calls after the oldest unfinished
// one, while a leader is known.
//
// The window is by submission order, not by the number of calls in
// flight: while a call is unfinished, fewer than maxInFlight calls
// submitted after it are ever sent, however long its own send or answer
// is delayed (its goroutine descheduled between pick and send, its message
// lost and resent). That is the bound the leader's dedupWindow relies on
// (see dedup.go). A count of calls in flight does not give it: the calls
// behind a slow one complete and make room for more, and under load a
// leader refused the slow call as too old to deduplicate.
//
// At most maxSentCalls calls whose callers wait for an answer (AcksLeader,
// AcksAll) are sent and unanswered at once. The calls submitted meanwhile
// wait, and the first of them to be sent takes the others along
// (joinLocked): under many concurrent Appends a partition's calls grow
// into batches, as a Kafka producer's do while its requests are in
// flight, instead of each paying its own header, leader round item,
// deduplication entry and answer.
func (p *producer) pickLocked(now int64, dst []*call) []*call {
	if p.mu.leader == 0 || len(p.mu.calls) == 0 {
		return dst
	}
	limit := p.mu.calls[0].n + maxInFlight
	sent := 0
	for _, c := range p.mu.calls {
		if c.sent && c.acks != AcksNone {
			sent++
		}
	}
	for i := 0; i < len(p.mu.calls); i++ {
		c := p.mu.calls[i]
		if c.n >= limit {
			break
		}
		if c.sent || c.finished {
			continue
		}
		if c.attempt > 0 && c.acks != AcksNone && c.allAbandoned() {
			// Sent before and given up: never sent again, so that it
			// cannot land after the calls its callers made since. (An
			// AcksNone call, whose caller never waits, rides out a lost
			// message or a leader change: see tick.)
			p.finishLocked(c, codeRetry, -1, -1)
			i--
			continue
		}
		if c.notBefore > now {
			continue
		}
		if c.acks != AcksNone {
			// AcksNone calls are not held back: their callers are gone,
			// and one that waits is dropped (see abandon).
			if sent >= maxSentCalls {
				continue
			}
			if c.attempt == 0 {
				p.joinLocked(i)
			}
			sent++
		}
		c.elsewhere = c.elsewhere || c.attempt > 0 && c.target != p.mu.leader
		c.sent, c.sentAt, c.target = true, now, p.mu.leader
		c.attempt++
		dst = append(dst, c)
	}
	return dst
}

// maxSentCalls is how many AcksLeader and AcksAll calls of a producer are
// sent and unanswered at once. It bounds only the messages: the calls
// waiting behind them are joined into one batch when they go, so every
// record submitted is on its way or in the next batch. 4 keeps several
// rounds of a partition in the pipeline (a leader pushes and writes round
// n+1 while it syncs round n) without splitting a burst into many small
// batches.
const maxSentCalls = 4

// joinLocked lets calls[i], about to be sent for the first time, take
// along the calls submitted right after it that were never sent either:
// as many as follow it in sequence, with the same acks and producer
// epoch, and fit in MaxBatchBytes. Their batches become one
// (log.JoinBatches) and they leave the list, to be answered with
// calls[i]. AcksNone calls are never joined: their callers do not wait
// for an answer to share.
func (p *producer) joinLocked(i int) {
	c := p.mu.calls[i]
	if c.acks == AcksNone || len(c.joined) > 0 {
		return
	}
	size, end, last := len(c.batch)+joinGrowth*int(c.own), i+1, c
	for ; end < len(p.mu.calls); end++ {
		x := p.mu.calls[end]
		grown := size + len(x.batch) - batchHeaderSize + joinGrowth*int(x.own)
		if x.sent || x.attempt != 0 || x.finished || x.acks != c.acks || grown > p.m.cfg.MaxBatchBytes ||
			x.firstSeq != nextSeq(last.lastSeq) ||
			log.Batch(x.batch).ProducerEpoch() != log.Batch(c.batch).ProducerEpoch() {
			break
		}
		size, last = grown, x
	}
	if end == i+1 {
		return
	}
	batches := make([][]byte, 0, end-i)
	for _, x := range p.mu.calls[i:end] {
		batches = append(batches, x.batch)
	}
	joined, err := log.JoinBatches(make([]byte, 0, size), batches)
	if err != nil {
		// Not reachable with batches Append encoded; sending them one by
		// one is always correct.
		return
	}
	c.joined = slices.Clone(p.mu.calls[i+1 : end])
	for _, x := range c.joined {
		x.unit = c
		c.count += x.own
	}
	// The joined calls' sequences follow each other, so the joined batch's
	// run from c's first to the last one's last, exactly: no other batch
	// carries any of them. (A gap, left by a call dropped unsent or by an
	// AcksNone call sent past a waiting one, ends the join.)
	c.batch, c.lastSeq = joined, last.lastSeq
	p.mu.calls = slices.Delete(p.mu.calls, i+1, end)
}

// joinGrowth bounds how much a record can grow when its batch is joined
// to others: its timestamp delta (to 10 bytes from 1), offset delta (to 5)
// and length prefix (by 2) get longer varints.
const joinGrowth = 16

// allAbandoned reports whether the callers of c and of every call joined
// to it gave up.
func (c *call) allAbandoned() bool {
	if !c.abandoned {
		return false
	}
	for _, x := range c.joined {
		if !x.abandoned {
			return false
		}
	}
	return true
}

// send delivers picked calls to their leader: the local replica, or the
// leader's node through the forwarding channel.
func (p *producer) send(calls []*call) {
	m := p.m
	for _, c := range calls {
		p.mu.Lock()
		if c.finished {
			// Given up (or answered) since it was picked, while this
			// goroutine waited to run: a batch sent now would reach the
			// leader after calls the window let go since.
			p.mu.Unlock()
			continue
		}
		target, attempt, epoch := c.target, c.attempt, p.mu.epoch
		p.mu.Unlock()
		req := &appendReq{batch: c.batch, pid: int64(m.cfg.ID), pepoch: m.producerEpoch(), firstSeq: c.firstSeq,
			lastSeq: c.lastSeq, count: c.count, acks: c.acks, epoch: epoch, reqID: c.reqID, attempt: attempt}
		if target == m.cfg.ID {
			req.call = c
			if r := m.replica(p.key); r != nil {
				r.enqueue(req)
			} else {
				m.orphan(p.key, req)
			}
			continue
		}
		m.trackCall(c)
		m.peer(target).appendReq(&appendItem{reqID: c.reqID, attempt: attempt, topicID: p.key.topicID,
			partition: p.key.partition, epoch: epoch, acks: c.acks, batch: c.batch})
	}
}

// complete takes the answer of node from to one attempt of c: only the
// node the attempt went to answers it.
func (p *producer) complete(c *call, from uint64, attempt uint64, code byte, leader uint64, epoch int32, base, last int64) {
	p.mu.Lock()
	if !c.finished && code == codeUnknownTopic && attempt == 1 && c.attempt > 1 && !c.elsewhere && c.target == from {
		// Every attempt went to from, which had no such topic when the
		// first came (a deletion is for good), nor so when the later ones
		// came after it: none was written.
		c.sent = false
		p.finishLocked(c, code, -1, -1)
		p.mu.Unlock()
		return
	}
	if c.finished || !c.sent || c.attempt != attempt || c.target != from {
		p.mu.Unlock()
		return
	}
	c.sent = false
	now := p.m.mono()
	if p.mu.dead != nil && code != codeOK && code != codeUnknownTopic {
		// The topic is deleted: nowhere to send it again.
		p.finishErrLocked(c, -1, -1, maybeWrittenDeleted(p.topic, p.key.partition))
		p.mu.Unlock()
		return
	}
	switch code {
	case codeNotLeader, codeRetry:
		switch {
		case leader != 0 && epoch > p.mu.epoch:
			// The answer names a newer leader than our metadata does: go
			// there at once, with every call sent elsewhere (they would
			// be answered the same).
			p.redirectLocked(leader, epoch)
		case c.target != p.mu.leader:
			// A node we no longer take for the leader answered (an event
			// or an earlier answer named another since): send the call
			// to the leader we know, at once.
		default:
			// Nothing newer known: wait for the metadata to change (an
			// event resends at once) or for the retry delay.
			c.notBefore = now + p.m.retryDelay()
		}
	case codeNotEnoughReplicas:
		// The ISR is smaller than MinInSyncReplicas. Often for a moment:
		// after a leader change, until the followers catch up and the
		// leader adds them back. Ride that out within ctx for
		// ReplicaLagTime (an ISR change resends at once, see isrChanged);
		// a shortage that lasts longer is the caller's to know. The clock
		// is the producer's, not the call's, so that calls waiting behind
		// this one in the window do not start a wait of their own once
		// sent. The batch was not written, or was and waits for the high
		// watermark: either way a retry writes it at most once.
		if !p.mu.short {
			p.mu.short, p.mu.shortAt = true, now
		}
		if now-p.mu.shortAt < int64(p.m.cfg.ReplicaLagTime) {
			c.notBefore = now + p.m.retryDelay()
			break
		}
		p.finishLocked(c, code, base, last)
	case codeOK:
		if c.acks == AcksAll {
			p.mu.short = false
		}
		p.finishLocked(c, code, base, last)
	case codeStorageStalled:
		if c.target == p.m.cfg.ID || !p.otherLeaderPossible(c.target) {
			p.finishLocked(c, code, base, last)
			break
		}
		// Another node's storage stalled, not this one's: it reports
		// itself unhealthy and the controller moves its leaderships to
		// another ISR member. Ride that out within ctx, as an election
		// (an event resends at once); the new leader deduplicates the
		// batch if the stalled one pushed it before its own write.
		c.notBefore = now + p.m.retryDelay()
	case codeUnknownTopic:
		// The leader had no replica of the partition and its topic is
		// deleted: this attempt was not written, but an earlier one may
		// have been, before the deletion.
		if c.attempt > 1 {
			p.finishErrLocked(c, -1, -1, maybeWrittenDeleted(p.topic, p.key.partition))
			break
		}
		p.finishLocked(c, code, base, last)
	default:
		p.finishLocked(c, code, base, last)
	}
	send := p.pickLocked(now, nil)
	p.mu.Unlock()
	p.send(send)
}

// otherLeaderPossible reports whether the partition's ISR, as the
// metadata shows it, holds an eligible member other than stalled.
func (p *producer) otherLeaderPossible(stalled uint64) bool {
	st := p.m.cfg.Meta.State()
	part, ok := st.Partition(p.topic, p.key.partition)
	if !ok {
		return false
	}
	for _, id := range part.ISR {
		if n, ok := st.Node(id); ok && id != stalled && n.Eligible() {
			return true
		}
	}
	return false
}

// finishLocked ends c with the outcome of code.
func (p *producer) finishLocked(c *call, code byte, base, last int64) {
	p.finishErrLocked(c, base, last, codeError2(code, p.topic, p.key.partition))
}

// finishErrLocked ends c, and the calls joined to it, with err. Offsets
// base to last are the whole batch's; each call gets its own records'
// part of them.
func (p *producer) finishErrLocked(c *call, base, last int64, err error) {
	c.sent = false
	p.mu.calls = slices.DeleteFunc(p.mu.calls, func(x *call) bool { return x == c })
	p.m.untrackCall(c)
	next := base
	for i := -1; i < len(c.joined); i++ {
		x := c
		if i >= 0 {
			x = c.joined[i]
		}
		x.finished, x.err = true, err
		x.base, x.last = base, last
		if base >= 0 && len(c.joined) > 0 {
			x.base, x.last = next, next+int64(x.own)-1
			next += int64(x.own)
		}
		close(x.done)
	}
	if len(p.mu.calls) == 0 {
		p.m.notifyChanged()
	}
}

// codeError2 turns a result code into the error Append returns.
func codeError2(code byte, topic string, partition int32) error {
	switch code {
	case codeOK:
		return nil
	case codeNotEnoughReplicas:
		return fmt.Errorf("%w: %s/%d", ErrNotEnoughReplicas, topic, partition)
	case codeTooLarge:
		return fmt.Errorf("%w: %s/%d", ErrRecordTooLarge, topic, partition)
	case codeStorageStalled:
		return fmt.Errorf("replication: append to %s/%d: %w", topic, partition, wal.ErrStorageStalled)
	case codeUnknownTopic:
		return fmt.Errorf("replication: %s: %w", topic, meta.ErrUnknownTopic)
	case codeSequence:
		return fmt.Errorf("replication: append to %s/%d: %w", topic, partition, errSequenceRefused)
	default:
		return fmt.Errorf("replication: append to %s/%d failed on the leader (code %d)", topic, partition, code)
	}
}

// abandon is called when c's caller gave up: an unsent call is dropped
// (its sequence stays a gap, which leaders accept) once the callers of
// every call joined with it gave up too; a sent one is left to its
// answer, and dropped instead of sent again (after a lost message, a
// retry answer or a leader change; see pickLocked): a batch whose Append
// returned is never written after one its caller appends next, beyond
// the message already on its way. Two exceptions: an AcksNone call (its
// Append returns at once) is sent again like any other, up to
// maxAcksNoneAttempts times; and a call joined into one batch with calls
// whose callers still wait goes with that batch. It reports whether the
// producer waits out a shortage of in-sync replicas (see complete).
func (p *producer) abandon(c *call) (short bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !c.finished {
		c.abandoned = true
		u := c
		if c.unit != nil {
			u = c.unit
		}
		if !u.sent && u.allAbandoned() {
			p.finishLocked(u, codeRetry, -1, -1)
		}
	}
	return p.mu.short
}

// isrChanged is told that the partition's record changed to pepoch, with
// at least MinInSyncReplicas members in its ISR: a shortage is over, and
// calls waiting for a retry delay are sent at once (as a leader change
// sends them). A record it saw before changes nothing: the event was
// another partition's, and the shortage may be the leader's (a lagging
// member it keeps in the ISR, see isrFloor), which only time ends.
func (p *producer) isrChanged(pepoch int32) {
	p.mu.Lock()
	if pepoch <= p.mu.pepoch {
		p.mu.Unlock()
		return
	}
	p.mu.pepoch = pepoch
	p.mu.short = false
	for _, c := range p.mu.calls {
		c.notBefore = 0
	}
	send := p.pickLocked(p.m.mono(), nil)
	p.mu.Unlock()
	p.send(send)
}

// setLeader takes the partition's leader from the metadata: calls sent to
// another node are sent again to this one.
func (p *producer) setLeader(leader uint64, epoch int32) {
	p.mu.Lock()
	if epoch < p.mu.epoch || epoch == p.mu.epoch && leader == p.mu.leader {
		p.mu.Unlock()
		return
	}
	p.redirectLocked(leader, epoch)
	send := p.pickLocked(p.m.mono(), nil)
	p.mu.Unlock()
	p.send(send)
}

// redirectLocked takes leader, of epoch, as the partition's leader: calls
// waiting for a retry delay may go at once, and calls sent to another node
// are sent again to this one (the new leader deduplicates a batch the old
// one wrote and replicated to it; answers to the older attempts are
// ignored).
func (p *producer) redirectLocked(leader uint64, epoch int32) {
	p.mu.leader, p.mu.epoch = leader, epoch
	for _, c := range p.mu.calls {
		c.notBefore = 0
		if c.sent && c.target != leader {
			c.sent = false
		}
	}
}

// maxAcksNoneAttempts is how many times an AcksNone call is sent before
// it is dropped unanswered.
const maxAcksNoneAttempts = 4

// tick resends calls whose answer is overdue (a lost message: the leader
// deduplicates) and calls whose retry delay passed. Calls given up by
// their callers are dropped instead (see abandon), but for AcksNone calls,
// which are sent up to maxAcksNoneAttempts times.
func (p *producer) tick(now int64) {
	p.mu.Lock()
	if len(p.mu.calls) == 0 {
		p.mu.Unlock()
		return
	}
	for _, c := range slices.Clone(p.mu.calls) {
		if !c.sent {
			if c.allAbandoned() {
				p.finishLocked(c, codeRetry, -1, -1)
			}
			continue
		}
		if now-c.sentAt >= p.m.resendAfter(c.attempt) {
			if p.mu.dead != nil {
				// The topic is deleted (see topicDeleted): no answer came.
				p.finishErrLocked(c, -1, -1, maybeWrittenDeleted(p.topic, p.key.partition))
				continue
			}
			if c.allAbandoned() && (c.acks != AcksNone || c.attempt >= maxAcksNoneAttempts) {
				p.finishLocked(c, codeRetry, -1, -1)
				continue
			}
			c.sent = false
		}
	}
	send := p.pickLocked(now, nil)
	p.mu.Unlock()
	p.send(send)
}

// fail ends every outstanding call with err (Manager closed); later
// submits fail with it too.
func (p *producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.dead = err
	for _, c := range slices.Clone(p.mu.calls) {
		p.finishErrLocked(c, -1, -1, err)
	}
}

// topicDeleted ends the outstanding calls because the topic is deleted;
// later submits fail with meta.ErrUnknownTopic. A call never sent fails
// with meta.ErrUnknownTopic too: it was not written. A call in flight whose
// attempts all went to one node waits for an answer, which tells (see
// complete), or for its resend timeout (see tick); topicDeleted reports
// whether there is such a call. Any other call sent may have been written
// before the deletion: it fails with the maybe-written error of
// maybeWrittenDeleted, never with a definite one.
func (p *producer) topicDeleted() (waiting bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	unknown := fmt.Errorf("replication: %s: %w", p.topic, meta.ErrUnknownTopic)
	p.mu.dead = unknown
	for _, c := range slices.Clone(p.mu.calls) {
		switch {
		case c.attempt == 0:
			p.finishErrLocked(c, -1, -1, unknown)
		case c.sent && !c.elsewhere && c.acks != AcksNone:
			// Its attempts, all to one node, may still be answered:
			// written (before the deletion), or "unknown topic" to the
			// first (none written, and the Append looks the name up
			// again; see complete). tick gives it up when the answer is
			// overdue.
			waiting = true
		default:
			p.finishErrLocked(c, -1, -1, maybeWrittenDeleted(p.topic, p.key.partition))
		}
	}
	return waiting
}

// maybeWrittenDeleted is the error of an append whose topic was deleted
// while it was in flight: it may have been written before the deletion,
// so it is not meta.ErrUnknownTopic (which says "not written") but
// ErrNotLeader, whose outcome is unknown.
func maybeWrittenDeleted(topic string, partition int32) error {
	return fmt.Errorf("replication: %s/%d deleted while the append was in flight, which may have been written before: %w",
		topic, partition, &NotLeaderError{})
}

func (p *producer) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.calls) == 0
}
