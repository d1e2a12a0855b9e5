package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
)

// Read bounds.
const (
	defaultReadBytes = 1 << 20
	maxReadWait      = 30 * time.Second // a forwarded read waits at most this on the leader
)

// readCall is a read forwarded to the leader, waiting for its answer.
type readCall struct {
	to   uint64 // the node asked: only its answer counts
	done chan struct{}
	resp readResp
}

// Read returns committed records of a partition from offset on: from this
// node's replica if it holds one (up to the high watermark it knows), else
// from the leader. With opts.MaxWait it waits, without polling, for a
// first record. Only the leader's log tells an offset out of range: a
// follower's log may lag the leader's (or start later), so an offset
// outside it is read from the leader. Errors: log.ErrOffsetOutOfRange,
// meta.ErrUnknownTopic, meta.ErrUnknownPartition, ErrClosed, ctx's error.
func (m *Manager) Read(ctx context.Context, topic string, partition int32, offset int64, opts ReadOptions) (ReadResult, error) {
	if m.closed.Load() {
		return ReadResult{}, ErrClosed
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultReadBytes
	}
	t, err := m.topic(ctx, topic, partition)
	if err != nil {
		return ReadResult{}, err
	}
	res, err := m.readTopic(ctx, t, partition, offset, opts)
	if errors.Is(err, meta.ErrUnknownTopic) {
		// This node's metadata may lag behind a deletion and a new topic
		// of the same name: ask the group, and read the new one if any.
		if t2, lerr := m.cfg.Meta.LinearizableTopic(ctx, topic); lerr == nil && t2.ID != t.ID && int(partition) < len(t2.Partitions) {
			return m.readTopic(ctx, t2, partition, offset, opts)
		}
	}
	return res, err
}

// readTopic reads a partition of topic t.
func (m *Manager) readTopic(ctx context.Context, t *meta.Topic, partition int32, offset int64, opts ReadOptions) (ReadResult, error) {
	topic := t.Name
	key := pkey{t.ID, partition}
	if r := m.replica(key); r != nil {
		res, err := r.read(ctx, offset, opts)
		if errors.Is(err, log.ErrOffsetOutOfRange) && !r.leading() {
			return m.forwardRead(ctx, key, topic, offset, opts, false)
		}
		if errors.Is(err, log.ErrClosed) {
			if m.closed.Load() {
				return ReadResult{}, ErrClosed
			}
			return ReadResult{}, fmt.Errorf("replication: %s: %w", topic, meta.ErrUnknownTopic)
		}
		return res, err
	}
	return m.forwardRead(ctx, key, topic, offset, opts, true)
}

// leading reports whether the replica leads its partition.
func (r *replica) leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.role == roleLeader
}

// waitFor waits up to the read's deadline for the high watermark to pass
// offset. It reports false when the wait is over.
func (r *replica) waitFor(ctx context.Context, offset int64, deadline time.Time) (bool, error) {
	if deadline.IsZero() || !time.Now().Before(deadline) {
		return false, nil
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := r.log.Wait(wctx, offset)
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, fmt.Errorf("replication: read: %w", ctx.Err())
	case wctx.Err() != nil:
		return false, nil
	}
	return false, err
}

// read serves a read from this replica.
func (r *replica) read(ctx context.Context, offset int64, opts ReadOptions) (ReadResult, error) {
	var deadline time.Time
	if opts.MaxWait > 0 {
		deadline = time.Now().Add(opts.MaxWait)
	}
	for {
		hw, start := r.log.HighWatermark(), r.log.LogStartOffset()
		if offset < start || offset > r.log.LogEndOffset() {
			return ReadResult{HighWatermark: hw, LogStartOffset: start}, fmt.Errorf("replication: read %s/%d at %d: %w",
				r.topic, r.key.partition, offset, log.ErrOffsetOutOfRange)
		}
		recs, err := r.log.Read(offset, readLimit(offset, hw, int64(opts.MaxRecords)), opts.MaxBytes)
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			// Retention moved the log start past offset since the check.
			return ReadResult{HighWatermark: r.log.HighWatermark(), LogStartOffset: r.log.LogStartOffset()}, err
		}
		if err != nil {
			r.readFailed(err)
			return ReadResult{}, err
		}
		if len(recs) > 0 {
			if opts.MaxRecords > 0 && len(recs) > opts.MaxRecords {
				recs = recs[:opts.MaxRecords]
			}
			return ReadResult{Records: recs, HighWatermark: hw, LogStartOffset: start}, nil
		}
		more, err := r.waitFor(ctx, offset, deadline)
		if err != nil || !more {
			return ReadResult{HighWatermark: hw, LogStartOffset: start}, err
		}
	}
}

// readRaw serves a forwarded read: raw batches below the high watermark.
func (r *replica) readRaw(ctx context.Context, q *readItem) readResp {
	resp := readResp{reqID: q.reqID}
	var deadline time.Time
	if q.maxWait > 0 {
		deadline = time.Now().Add(min(q.maxWait, maxReadWait))
	}
	// The answer is one message: no larger than LargestMessage allows
	// (a first batch is returned whole, and is at most MaxBatchBytes).
	maxBytes := int(min(max(q.maxBytes, 1), int64(max(maxRoundBytes, r.m.cfg.MaxBatchBytes))))
	for {
		resp.hw, resp.logStart = r.log.HighWatermark(), r.log.LogStartOffset()
		if q.offset < resp.logStart || q.offset > r.log.LogEndOffset() {
			// Out of range only if this replica leads: the sender's
			// metadata may name a leader that no longer is, and a
			// follower's log may lag. Then it asks again.
			resp.code = codeOffsetOutOfRange
			if !r.leading() {
				resp.code = codeRetry
			}
			return resp
		}
		// Whole batches below the high watermark (not readLimit: a batch
		// is shipped only if it ends below the limit); the sender keeps
		// MaxRecords of them. For a few records, the first batch alone
		// (ReadBatches returns it whatever maxBytes) may hold them all:
		// then it is all that is read and shipped.
		var b []byte
		var err error
		if q.maxRecords > 0 && q.maxRecords <= 64 {
			b, err = r.log.ReadBatches(nil, q.offset, resp.hw, 1)
			if err == nil && len(b) > 0 && log.Batch(b).LastOffset()-q.offset+1 < q.maxRecords &&
				log.Batch(b).NextOffset() < resp.hw {
				b = nil // short of MaxRecords with more to read: read on below
			}
		}
		if b == nil && err == nil {
			b, err = r.log.ReadBatches(nil, q.offset, resp.hw, maxBytes)
		}
		if err != nil {
			r.readFailed(err)
			resp.code = codeError
			if errors.Is(err, log.ErrOffsetOutOfRange) {
				resp.code = codeOffsetOutOfRange
			}
			return resp
		}
		if len(b) > 0 {
			resp.batches = b
			return resp
		}
		more, err := r.waitFor(ctx, q.offset, deadline)
		if err != nil {
			resp.code = codeRetry
			return resp
		}
		if !more {
			return resp
		}
	}
}

// readLimit is the offset a read from offset stops before: the high
// watermark hw, or fewer records if maxRecords (0: no limit) says so, so
// that a read of a few records does not decode MaxBytes of them.
func readLimit(offset, hw, maxRecords int64) int64 {
	if maxRecords > 0 && maxRecords < hw-offset {
		return offset + maxRecords
	}
	return hw
}

// isClosed reports whether ch is closed.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// forwardRead sends a read to the partition's leader and waits for its
// answer, riding out leader changes and lost messages within ctx. With
// local, a replica this node opens meanwhile serves it instead; this
// node's replica is also asked when the metadata names this node the
// leader.
func (m *Manager) forwardRead(ctx context.Context, key pkey, topic string, offset int64, opts ReadOptions, local bool) (ReadResult, error) {
	for {
		changed := m.changedCh()
		st := m.cfg.Meta.State()
		part, ok := st.Partition(topic, key.partition)
		if topicGone(st, topic, key.topicID) {
			ok = false // deleted, or deleted and created again: Read retries on the new one
		}
		if r := m.replica(key); r != nil && (local || ok && part.Leader == m.cfg.ID) {
			res, err := r.read(ctx, offset, opts)
			if local || !errors.Is(err, log.ErrOffsetOutOfRange) || r.leading() {
				return res, err
			}
			// Named the leader, not leading yet: its log may still lag.
			if err := m.waitChange(ctx, changed, m.retryDelay()); err != nil {
				return ReadResult{}, err
			}
			continue
		}
		if !ok {
			return ReadResult{}, fmt.Errorf("replication: %s: %w", topic, meta.ErrUnknownTopic)
		}
		if part.Leader == 0 || part.Leader == m.cfg.ID {
			if err := m.waitChange(ctx, changed, 0); err != nil {
				return ReadResult{}, err
			}
			continue
		}
		rc := &readCall{to: part.Leader, done: make(chan struct{})}
		id := m.reqSeq.Add(1)
		m.mu.Lock()
		m.mu.reads[id] = rc
		m.mu.Unlock()
		m.peer(part.Leader).read(&readItem{reqID: id, topicID: key.topicID, partition: key.partition, offset: offset,
			maxBytes: int64(opts.MaxBytes), maxRecords: int64(opts.MaxRecords), maxWait: opts.MaxWait})
		// The leader waits at most maxReadWait (a larger MaxWait would
		// also overflow the sum).
		timer := time.NewTimer(min(opts.MaxWait, maxReadWait) + time.Duration(m.resendAfter(1)))
		var err error
		select {
		case <-rc.done:
		case <-timer.C:
		case <-ctx.Done():
			err = fmt.Errorf("replication: read: %w", ctx.Err())
		case <-m.done:
			err = ErrClosed
		}
		timer.Stop()
		// Once rc is out of the map, the handler no longer writes rc.resp
		// (it writes it and closes done under m.mu): it is ours. An answer
		// may have landed as the timer fired: take it then.
		m.mu.Lock()
		delete(m.mu.reads, id)
		resp := rc.resp
		answered := isClosed(rc.done)
		m.mu.Unlock()
		if err != nil {
			return ReadResult{}, err
		}
		if !answered {
			resp.code = codeRetry
		}
		switch resp.code {
		case codeOK:
			return readResult(resp, offset, opts.MaxRecords)
		case codeOffsetOutOfRange:
			return ReadResult{HighWatermark: resp.hw, LogStartOffset: resp.logStart},
				fmt.Errorf("replication: read %s/%d at %d: %w", topic, key.partition, offset, log.ErrOffsetOutOfRange)
		case codeUnknownTopic:
			return ReadResult{}, fmt.Errorf("replication: %s: %w", topic, meta.ErrUnknownTopic)
		}
		if err := m.waitChange(ctx, changed, m.retryDelay()); err != nil {
			return ReadResult{}, err
		}
	}
}

// waitChange waits for the next metadata change, or at most d (0: no
// bound) before a retry.
func (m *Manager) waitChange(ctx context.Context, changed <-chan struct{}, d int64) error {
	var tc <-chan time.Time
	if d > 0 {
		t := time.NewTimer(time.Duration(d))
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-changed:
	case <-tc:
	case <-ctx.Done():
		return fmt.Errorf("replication: %w", ctx.Err())
	case <-m.done:
		return ErrClosed
	}
	return nil
}

// readResult turns a forwarded read's batches into records from offset
// on, below the high watermark.
func readResult(resp readResp, offset int64, maxRecords int) (ReadResult, error) {
	res := ReadResult{HighWatermark: resp.hw, LogStartOffset: resp.logStart}
	for rest := resp.batches; len(rest) > 0; {
		b, next, err := log.SplitBatch(rest)
		if err != nil {
			return ReadResult{}, fmt.Errorf("replication: forwarded read: %w", err)
		}
		rest = next
		if err := b.Validate(); err != nil {
			return ReadResult{}, fmt.Errorf("replication: forwarded read: %w", err)
		}
		recs, err := b.Records(nil)
		if err != nil {
			return ReadResult{}, fmt.Errorf("replication: forwarded read: %w", err)
		}
		for _, rec := range recs {
			if rec.Offset >= offset && rec.Offset < resp.hw && (maxRecords <= 0 || len(res.Records) < maxRecords) {
				res.Records = append(res.Records, rec)
			}
		}
		if maxRecords > 0 && len(res.Records) >= maxRecords {
			break // the rest would be decoded to be dropped
		}
	}
	return res, nil
}

// HandleReplication takes one inbound mux.TagReplication message (the
// payload after the tag): leader pushes and follower acks. It never
// blocks: log writes happen on the replicas' workers.
func (m *Manager) HandleReplication(from uint64, msg []byte) {
	if m.closed.Load() {
		return
	}
	err := forEachItem(msg, func(kind byte, body []byte) error {
		switch kind {
		case kindPush:
			var it pushItem
			if err := decodePush(body, &it); err != nil {
				return err
			}
			if r := m.replica(pkey{it.topicID, it.partition}); r != nil {
				r.onPush(from, &it)
			}
		case kindAck:
			var a ackItem
			if err := decodeAck(body, &a); err != nil {
				return err
			}
			if r := m.replica(pkey{a.topicID, a.partition}); r != nil {
				r.onAck(from, &a)
			}
		}
		return nil
	})
	if err != nil {
		m.cfg.Logger.Warn("replication: bad replication message", "from", from, "err", err)
	}
}

// HandleForward takes one inbound mux.TagForward message (the payload
// after the tag): forwarded appends and reads, and their answers. It never
// blocks.
func (m *Manager) HandleForward(from uint64, msg []byte) {
	if m.closed.Load() {
		return
	}
	err := forEachItem(msg, func(kind byte, body []byte) error {
		switch kind {
		case kindAppend:
			var a appendItem
			if err := decodeAppend(body, &a); err != nil {
				return err
			}
			m.onForwardedAppend(from, &a)
		case kindAppendResp:
			var a appendResp
			if err := decodeAppendResp(body, &a); err != nil {
				return err
			}
			m.mu.RLock()
			c := m.mu.calls[a.reqID]
			m.mu.RUnlock()
			if c != nil {
				c.p.complete(c, from, a.attempt, a.code, a.leader, a.epoch, a.base, a.last)
			}
		case kindRead:
			var q readItem
			if err := decodeReadItem(body, &q); err != nil {
				return err
			}
			m.serveRead(from, q)
		case kindReadResp:
			var q readResp
			if err := decodeReadResp(body, &q); err != nil {
				return err
			}
			m.mu.Lock()
			if rc := m.mu.reads[q.reqID]; rc != nil && rc.to == from {
				delete(m.mu.reads, q.reqID)
				rc.resp = q
				close(rc.done)
			}
			m.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		m.cfg.Logger.Warn("replication: bad forwarding message", "from", from, "err", err)
	}
}

// onForwardedAppend checks a forwarded batch and queues it on the
// partition's replica.
func (m *Manager) onForwardedAppend(from uint64, a *appendItem) {
	req := &appendReq{from: from, reqID: a.reqID, attempt: a.attempt, acks: a.acks, epoch: a.epoch, batch: a.batch}
	b, rest, err := log.SplitBatch(a.batch)
	switch {
	case len(a.batch) > m.cfg.MaxBatchBytes:
		answers{{req: req, code: codeTooLarge}}.deliver(m)
		return
	case err != nil || len(rest) != 0 || b.Validate() != nil || b.ProducerID() < 0:
		answers{{req: req, code: codeInvalid}}.deliver(m)
		return
	}
	req.pid, req.pepoch, req.firstSeq, req.count = b.ProducerID(), b.ProducerEpoch(), b.BaseSequence(), b.Count()
	req.lastSeq = lastSeqOf(req.firstSeq, req.count)
	key := pkey{a.topicID, a.partition}
	r := m.replica(key)
	switch {
	case r == nil && m.cfg.Meta.State().TopicDeleted(key.topicID):
		answers{{req: req, code: codeUnknownTopic}}.deliver(m)
	case r == nil:
		m.orphan(key, req)
	case m.deleted(r):
		answers{{req: req, code: codeUnknownTopic}}.deliver(m)
	default:
		r.enqueue(req)
	}
}

// deleted reports whether r's topic is gone from this node's metadata,
// before the deletion's event has dropped r. A forwarded call that reaches
// r then is refused (as one for a topic whose replica is dropped already):
// the sender's metadata lags, and once DeleteTopic returned, a topic
// created again under the name is the one it must reach
// (meta.Node.DeleteTopic waits until the replicas' nodes have applied the
// deletion, this one included, not until they dropped r).
func (m *Manager) deleted(r *replica) bool {
	return topicGone(m.cfg.Meta.State(), r.topic, r.key.topicID)
}

// topicGone reports whether st holds no topic of that name and ID: it was
// deleted, maybe created again under the name.
func topicGone(st *meta.State, name string, id uint64) bool {
	t, ok := st.Topic(name)
	return !ok || t.ID != id
}

// serveRead answers a forwarded read on a goroutine of its own (it may
// wait up to its MaxWait).
func (m *Manager) serveRead(from uint64, q readItem) {
	r := m.replica(pkey{q.topicID, q.partition})
	if r == nil {
		code := codeRetry
		if m.cfg.Meta.State().TopicDeleted(q.topicID) {
			code = codeUnknownTopic
		}
		m.peer(from).readResp(&readResp{reqID: q.reqID, code: code})
		return
	}
	if m.deleted(r) {
		m.peer(from).readResp(&readResp{reqID: q.reqID, code: codeUnknownTopic})
		return
	}
	m.spawn(func() {
		resp := r.readRaw(m.ctx, &q)
		m.peer(from).readResp(&resp)
	})
}
