package replication

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
)

// watchLoop applies the metadata's events to the replicas and producers.
// Owned by the Manager; exits on Close.
func (m *Manager) watchLoop() {
	defer m.wg.Done()
	for {
		ev, err := m.watcher.Next(m.ctx)
		if err != nil {
			return
		}
		switch ev.Type {
		case meta.EventResync:
			m.reconcileAll(ev.State)
		case meta.EventTopicCreated, meta.EventPartitionChanged:
			if t, ok := ev.State.Topic(ev.Topic); ok && t.ID == ev.TopicID {
				m.reconcileTopic(t)
			}
		case meta.EventTopicDeleted:
			m.topicDeleted(ev.TopicID)
		}
		m.checkRegistered()
		m.notifyChanged()
	}
}

// reconcileAll brings replicas and producers in line with a whole State.
//
// st may be older than the State an Append read and created a producer
// from: a snapshot's EventResync is delivered after later changes are
// visible through meta.Node.State, and an Append may create a producer
// for a topic applied after the State this loop read. So a topic missing
// from st is taken for deleted only if st is at or past the index that
// created it (a topic's ID is that index, and IDs are never reused): a
// topic created after st is left alone. Taking it for deleted would fail
// its producer's calls in flight (written or not) and drop the producer.
func (m *Manager) reconcileAll(st *meta.State) {
	live := map[uint64]bool{}
	for _, t := range st.Topics() {
		live[t.ID] = true
		m.reconcileTopic(t)
	}
	deleted := func(id uint64) bool { return !live[id] && id <= st.Index() }
	m.mu.RLock()
	var gone []uint64
	for key := range m.mu.replicas {
		if deleted(key.topicID) {
			gone = append(gone, key.topicID)
		}
	}
	for key := range m.mu.producers {
		if deleted(key.topicID) {
			gone = append(gone, key.topicID)
		}
	}
	m.mu.RUnlock()
	slices.Sort(gone)
	for _, id := range slices.Compact(gone) {
		m.topicDeleted(id)
	}
}

// reconcileTopic opens the replicas of t assigned to this node, updates
// them and the producers from the partition records.
func (m *Manager) reconcileTopic(t *meta.Topic) {
	self := m.cfg.ID
	for i := range t.Partitions {
		part := t.Partitions[i]
		key := pkey{t.ID, part.Partition}
		r := m.replica(key)
		switch assigned := slices.Contains(part.Replicas, self); {
		case assigned && r == nil:
			if r = m.addReplica(t, key); r == nil {
				continue
			}
			r.update(part, t.Config)
			m.mu.Lock()
			orphans := m.mu.orphans[key]
			delete(m.mu.orphans, key)
			m.mu.Unlock()
			for _, o := range orphans {
				r.enqueue(o.req)
			}
		case assigned:
			r.update(part, t.Config)
		case r != nil:
			m.dropReplica(key, true)
		}
		m.mu.RLock()
		p := m.mu.producers[key]
		m.mu.RUnlock()
		if p != nil {
			p.setLeader(part.Leader, part.LeaderEpoch)
			if len(part.ISR) >= t.Config.MinInSyncReplicas {
				p.isrChanged(part.PartitionEpoch)
			}
		}
	}
}

// topicDeleted removes every replica of the topic, with its data, and ends
// its producers' calls: at once, or once the answer to a call in flight
// tells (see producer.topicDeleted; such producers wait in m.mu.dying).
func (m *Manager) topicDeleted(topicID uint64) {
	m.mu.Lock()
	var keys []pkey
	for key := range m.mu.replicas {
		if key.topicID == topicID {
			keys = append(keys, key)
		}
	}
	var ps []*producer
	for key, p := range m.mu.producers {
		if key.topicID == topicID {
			ps = append(ps, p)
			delete(m.mu.producers, key)
		}
	}
	var orphans []orphan
	for key, os := range m.mu.orphans {
		if key.topicID == topicID {
			orphans = append(orphans, os...)
			delete(m.mu.orphans, key)
		}
	}
	m.mu.Unlock()
	if h := m.topicDeletedHook.Load(); h != nil {
		(*h)()
	}
	for _, key := range keys {
		m.dropReplica(key, true)
	}
	m.removeTopicDirs(topicID)
	for _, p := range ps {
		if !p.topicDeleted() {
			continue
		}
		m.mu.Lock()
		closed := m.closed.Load() // Close sets it before it collects the producers
		if !closed {
			m.mu.dying = append(m.mu.dying, p)
		}
		m.mu.Unlock()
		if closed {
			p.fail(ErrClosed) // Close did not see p: it had left producers
		}
	}
	var out answers
	for _, o := range orphans {
		out.add(o.req, codeUnknownTopic, 0, 0)
	}
	out.deliver(m)
}

// pruneDying forgets the producers of deleted topics that have no call
// left. (A producer's lock is taken before m.mu, never under it.)
func (m *Manager) pruneDying() {
	m.mu.RLock()
	dying := slices.Clone(m.mu.dying)
	m.mu.RUnlock()
	var idle []*producer
	for _, p := range dying {
		if p.idle() {
			idle = append(idle, p)
		}
	}
	if len(idle) == 0 {
		return
	}
	m.mu.Lock()
	m.mu.dying = slices.DeleteFunc(m.mu.dying, func(p *producer) bool { return slices.Contains(idle, p) })
	m.mu.Unlock()
}

// addReplica opens this node's replica of t's partition key and adds it
// to the Manager; nil if it cannot be opened (logged).
func (m *Manager) addReplica(t *meta.Topic, key pkey) *replica {
	m.dirMu.Lock()
	defer m.dirMu.Unlock()
	r, err := m.openReplica(t.Name, key, t.Config)
	if err != nil {
		m.cfg.Logger.Error("replication: cannot open replica", "err", err)
		return nil
	}
	m.mu.Lock()
	m.mu.replicas[key] = r
	m.mu.Unlock()
	return r
}

// dropReplica closes a replica and, with remove, deletes its files and its
// quarantined directories.
func (m *Manager) dropReplica(key pkey, remove bool) {
	m.dirMu.Lock()
	defer m.dirMu.Unlock()
	m.mu.Lock()
	r := m.mu.replicas[key]
	delete(m.mu.replicas, key)
	m.mu.Unlock()
	if r == nil {
		return
	}
	if err := r.close(remove); err != nil {
		m.cfg.Logger.Warn("replication: closing replica", "topic", r.topic, "partition", key.partition, "err", err)
	}
	if remove {
		m.removeQuarantines(r.dir)
	}
}

// retentionEvery is how many ticks pass between two retention runs.
const retentionEvery = 120

// tickLoop is the Manager's one timer: leaders retransmit and probe, ask
// for ISR changes; producers resend overdue calls; orphans expire;
// retention runs now and then. Owned by the Manager; exits on Close.
func (m *Manager) tickLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.tickInterval())
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-m.done:
			return
		case <-t.C:
		}
		m.tick(n%retentionEvery == 0)
	}
}

func (m *Manager) tick(retention bool) {
	now := m.mono()
	m.mu.RLock()
	replicas := make([]*replica, 0, len(m.mu.replicas))
	for _, r := range m.mu.replicas {
		replicas = append(replicas, r)
	}
	producers := m.producersLocked()
	m.mu.RUnlock()
	retransmit := m.retransmitAfter()
	var out answers
	for _, r := range replicas {
		r.mu.Lock()
		r.tickLeaderLocked(now, retransmit, &out)
		r.mu.Unlock()
		out.deliver(m)
		out = out[:0]
	}
	for _, p := range producers {
		p.tick(now)
	}
	m.pruneDying()
	m.expireOrphans(now)
	if retention {
		for _, r := range replicas {
			if !r.retain || r.log.Err() != nil || !r.retaining.CompareAndSwap(false, true) {
				continue
			}
			if !m.spawn(r.enforceRetention) {
				r.retaining.Store(false)
			}
		}
	}
}

// enforceRetention applies the topic's retention to the replica's log. It
// runs on a goroutine of its own, not the tick loop's: it waits for the
// log's reads, and one hung on the disk (reads have no deadline) would stop
// the timer of every partition of the node.
func (r *replica) enforceRetention() {
	defer r.retaining.Store(false)
	ctx, cancel := context.WithTimeout(r.m.ctx, 10*time.Second)
	defer cancel()
	if _, err := r.log.EnforceRetention(ctx); err != nil && r.m.ctx.Err() == nil && !errors.Is(err, log.ErrClosed) {
		r.m.cfg.Logger.Warn("replication: retention", "topic", r.topic, "partition", r.key.partition, "err", err)
	}
}

// retransmitAfter is how long a leader's pushes in flight to a follower
// may go without progress before they are resent, at least (see
// fstate.rto): four ticks.
func (m *Manager) retransmitAfter() int64 { return int64(4 * m.cfg.tickInterval()) }

// maxResendTimeout caps a follower's resend timeout: twice ReplicaLagTime
// (a follower slower than that is out of the ISR anyway).
func (m *Manager) maxResendTimeout() int64 { return int64(2 * m.cfg.ReplicaLagTime) }

// orphanTTL is how long a batch waits for its replica to be opened here
// before its producer is told to retry.
const orphanTTL = int64(2 * time.Second)

func (m *Manager) expireOrphans(now int64) {
	var out answers
	m.mu.Lock()
	for key, os := range m.mu.orphans {
		kept := os[:0]
		for _, o := range os {
			if now-o.at >= orphanTTL {
				out.add(o.req, codeRetry, 0, 0)
			} else {
				kept = append(kept, o)
			}
		}
		if len(kept) == 0 {
			delete(m.mu.orphans, key)
		} else {
			m.mu.orphans[key] = kept
		}
	}
	m.mu.Unlock()
	out.deliver(m)
}
