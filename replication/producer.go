package replication

import (
	"fmt"
	"slices"
	"sync"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// call is one Append on its way to the partition's leader. It is sent,
// answered "retry" (not the leader, leader not ready), sent again with a
// new attempt number, until answered for good; answers to older attempts
// are ignored. Every attempt carries the same producer sequence, so a
// leader that already holds the batch answers with its offsets.
type call struct {
	p        *producer
	batch    []byte
	firstSeq int32
	lastSeq  int32
	count    int32
	acks     Acks
	reqID    uint64
	n        uint64 // submission order in its producer

	// under p.mu
	attempt   uint64
	sent      bool
	sentAt    int64 // mono
	notBefore int64 // mono: not resent before
	target    uint64
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
		calls   []*call // outstanding, in submission order
		dead    error   // the topic is gone: fail everything
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
func (p *producer) pickLocked(now int64, dst []*call) []*call {
	if p.mu.leader == 0 || len(p.mu.calls) == 0 {
		return dst
	}
	limit := p.mu.calls[0].n + maxInFlight
	for _, c := range p.mu.calls {
		if c.n >= limit {
			break
		}
		if c.sent || c.finished || c.notBefore > now {
			continue
		}
		c.sent, c.sentAt, c.target = true, now, p.mu.leader
		c.attempt++
		dst = append(dst, c)
	}
	return dst
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

// complete takes the leader's answer to one attempt of c.
func (p *producer) complete(c *call, attempt uint64, code byte, leader uint64, epoch int32, base, last int64) {
	p.mu.Lock()
	if c.finished || !c.sent || c.attempt != attempt {
		p.mu.Unlock()
		return
	}
	c.sent = false
	now := p.m.mono()
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

// finishErrLocked ends c with err.
func (p *producer) finishErrLocked(c *call, base, last int64, err error) {
	c.finished, c.sent = true, false
	c.base, c.last = base, last
	c.err = err
	p.mu.calls = slices.DeleteFunc(p.mu.calls, func(x *call) bool { return x == c })
	p.m.untrackCall(c)
	close(c.done)
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
// (its sequence stays a gap, which leaders accept); a sent one is left to
// its answer. It reports whether the producer waits out a shortage of
// in-sync replicas (see complete).
func (p *producer) abandon(c *call) (short bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !c.finished {
		c.abandoned = true
		if !c.sent {
			p.finishLocked(c, codeRetry, -1, -1)
		}
	}
	return p.mu.short
}

// isrChanged is told that the partition's ISR has at least MinInSyncReplicas
// members: a shortage is over, and calls waiting for a retry delay are
// sent at once (as a leader change sends them).
func (p *producer) isrChanged() {
	p.mu.Lock()
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

// tick resends calls whose answer is overdue (a lost message: the leader
// deduplicates) and calls whose retry delay passed. Abandoned calls are
// given up after a few attempts.
func (p *producer) tick(now int64) {
	p.mu.Lock()
	if len(p.mu.calls) == 0 {
		p.mu.Unlock()
		return
	}
	for _, c := range slices.Clone(p.mu.calls) {
		if !c.sent {
			if c.abandoned {
				p.finishLocked(c, codeRetry, -1, -1)
			}
			continue
		}
		if now-c.sentAt >= p.m.resendAfter(c.attempt) {
			if c.abandoned && c.attempt >= 4 {
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

// topicDeleted ends every outstanding call because the topic is deleted;
// later submits fail with meta.ErrUnknownTopic. A call never sent fails
// with meta.ErrUnknownTopic too: it was not written. A call sent at least
// once may have been written before the deletion: it fails with the
// maybe-written error of maybeWrittenDeleted, never with a definite one.
func (p *producer) topicDeleted() {
	p.mu.Lock()
	defer p.mu.Unlock()
	unknown := fmt.Errorf("replication: %s: %w", p.topic, meta.ErrUnknownTopic)
	p.mu.dead = unknown
	for _, c := range slices.Clone(p.mu.calls) {
		err := unknown
		if c.attempt > 0 {
			err = maybeWrittenDeleted(p.topic, p.key.partition)
		}
		p.finishErrLocked(c, -1, -1, err)
	}
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
