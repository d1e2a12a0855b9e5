package meta

import (
	"fmt"
	"slices"
)

// result is the outcome of applying one command, handed to its proposer.
type result struct {
	err   error
	dup   bool // a retried request, applied before: skipped
	topic *Topic
	part  Partition
	inc   uint64
	index uint64 // the raft index applied, set by the driver
}

// applier applies one command to a State. It is deterministic: the same
// State and command give the same next State and events on every node.
type applier struct {
	prev    *State
	next    *State                   // nil until the first change
	owned   [topicShards / 64]uint64 // bit i: next's topic shard i is a copy of its own
	index   uint64
	offsets *offsetTable
	events  []Event
}

// apply applies c, committed at index, to s. It returns the next State (s
// itself when nothing changed), the events in order and the outcome.
func apply(s *State, index uint64, c *command, offs *offsetTable) (*State, []Event, result) {
	if c.From != 0 && c.Session != 0 {
		offs.mu.Lock()
		dup := offs.dedup.seen(proposer{c.From, c.Session}, c.Seq)
		offs.mu.Unlock()
		if dup {
			return s, nil, result{dup: true}
		}
	}
	a := &applier{prev: s, index: index, offsets: offs}
	r := a.run(c)
	if a.next == nil {
		return s, nil, r
	}
	a.next.index = index
	for i := range a.events {
		a.events[i].State = a.next
		a.events[i].Index = index
	}
	return a.next, a.events, r
}

func (a *applier) st() *State {
	if a.next == nil {
		a.next = a.prev.clone()
	}
	return a.next
}

func (a *applier) run(c *command) result {
	switch c.Op {
	case opRegister:
		return a.register(c)
	case opFence:
		return a.fence(c)
	case opUnfence:
		return a.unfence(c)
	case opCreateTopic:
		return a.createTopic(c)
	case opDeleteTopic:
		return a.deleteTopic(c)
	case opElectLeader:
		return a.electLeader(c)
	case opAlterISR:
		return a.alterISR(c)
	case opDrain, opSetUnhealthy:
		return a.setFlag(c)
	case opCommitOffset:
		return a.commitOffset(c)
	}
	return result{err: fmt.Errorf("%w: op %d", ErrInvalidArgument, c.Op)}
}

// putTopic sets (t non-nil) or deletes a topic in the next State, copying
// its shard on first write.
func (a *applier) putTopic(name string, t *Topic) {
	s := a.st()
	i := shardOf(name)
	if a.owned[i/64]&(1<<(i%64)) == 0 {
		sh := make(map[string]*Topic, len(s.topics.shards[i])+1)
		for k, v := range s.topics.shards[i] {
			sh[k] = v
		}
		s.topics.shards[i] = sh
		a.owned[i/64] |= 1 << (i % 64)
	}
	_, had := s.topics.shards[i][name]
	switch {
	case t == nil && had:
		delete(s.topics.shards[i], name)
		s.topics.n--
	case t != nil:
		s.topics.shards[i][name] = t
		if !had {
			s.topics.n++
		}
	}
}

func (a *applier) emit(e Event) { a.events = append(a.events, e) }

func (a *applier) register(c *command) result {
	if c.Node == 0 {
		return result{err: fmt.Errorf("%w: node 0", ErrInvalidArgument)}
	}
	n, ok := a.prev.nodes[c.Node]
	if ok && n.Nonce == c.Nonce {
		return result{inc: n.Incarnation} // a retried proposal
	}
	s := a.st()
	a.offsets.mu.Lock()
	a.offsets.dedup.forget(c.Node, c.Nonce)
	a.offsets.mu.Unlock()
	n = NodeInfo{ID: c.Node, Incarnation: n.Incarnation + 1, Nonce: c.Nonce}
	// The old incarnation's session ends now: as if fenced, then back.
	s.nodes[c.Node] = NodeInfo{ID: c.Node, Incarnation: n.Incarnation, Fenced: true}
	if ok {
		a.evict(c.Node, true)
	}
	s.nodes[c.Node] = n
	a.emit(Event{Type: EventNodeRegistered, Node: c.Node})
	a.electOffline()
	return result{inc: n.Incarnation}
}

func (a *applier) fence(c *command) result {
	n, ok := a.prev.nodes[c.Node]
	if !ok {
		return result{err: ErrUnknownNode}
	}
	if n.Incarnation != c.Incarnation {
		return result{err: fmt.Errorf("%w: node %d incarnation %d, not %d", ErrStaleEpoch, c.Node, n.Incarnation, c.Incarnation)}
	}
	if n.Fenced {
		return result{}
	}
	n.Fenced = true
	a.st().nodes[c.Node] = n
	a.emit(Event{Type: EventNodeFenced, Node: c.Node})
	a.evict(c.Node, true)
	return result{}
}

func (a *applier) unfence(c *command) result {
	n, ok := a.prev.nodes[c.Node]
	if !ok {
		return result{err: ErrUnknownNode}
	}
	if n.Incarnation != c.Incarnation {
		return result{err: fmt.Errorf("%w: node %d incarnation %d, not %d", ErrStaleEpoch, c.Node, n.Incarnation, c.Incarnation)}
	}
	if !n.Fenced {
		return result{}
	}
	n.Fenced = false
	a.st().nodes[c.Node] = n
	a.emit(Event{Type: EventNodeUnfenced, Node: c.Node})
	a.electOffline()
	return result{}
}

// setFlag sets or clears Draining (opDrain) or Unhealthy (opSetUnhealthy).
func (a *applier) setFlag(c *command) result {
	n, ok := a.prev.nodes[c.Node]
	if !ok {
		return result{err: ErrUnknownNode}
	}
	if n.Incarnation != c.Incarnation {
		return result{err: fmt.Errorf("%w: node %d incarnation %d, not %d", ErrStaleEpoch, c.Node, n.Incarnation, c.Incarnation)}
	}
	flag := &n.Draining
	if c.Op == opSetUnhealthy {
		flag = &n.Unhealthy
	}
	if *flag == c.Flag {
		return result{}
	}
	*flag = c.Flag
	a.st().nodes[c.Node] = n
	a.emit(Event{Type: EventNodeChanged, Node: c.Node})
	if c.Flag {
		a.evict(c.Node, false)
	} else {
		a.electOffline()
	}
	return result{}
}

// evict moves the leaderships of node (now ineligible) to other eligible
// ISR members, epoch+1; a partition with none goes offline (fenced) or
// stays with node (draining, unhealthy: it is the best there is). With
// leaveISR the node also leaves every ISR that keeps a member which is
// not draining.
//
// A draining member is not enough: replication leaves it out of the high
// watermark (it is shutting down), so it may lack committed records. Were
// node to leave an ISR whose other members all drain, one of them would
// be its only member and, once back, elected without records the
// partition acknowledged. node stays instead, and the partition waits for
// it, as for a last ISR member.
func (a *applier) evict(node uint64, leaveISR bool) {
	s := a.st()
	for _, name := range sortedTopicNames(s) {
		t, _ := s.topics.get(name)
		var nt *Topic
		for i := range t.Partitions {
			p := &t.Partitions[i]
			leaves := leaveISR && p.InISR(node) && othersCounted(s, p, node)
			moves := p.Leader == node && (leaveISR || pickLeader(s, p, node) != 0)
			if !leaves && !moves {
				continue
			}
			if nt == nil {
				nt = cloneTopic(t)
				a.putTopic(name, nt)
			}
			np := &nt.Partitions[i]
			if leaves {
				np.ISR = slices.DeleteFunc(np.ISR, func(id uint64) bool { return id == node })
			}
			if np.Leader == node {
				if l := pickLeader(s, np, node); l != 0 {
					np.Leader = l
				} else if leaveISR {
					np.Leader = 0
				}
				np.LeaderEpoch++
			}
			np.PartitionEpoch++
			a.emit(Event{Type: EventPartitionChanged, Topic: name, TopicID: nt.ID, Partition: np.Partition})
		}
	}
}

// othersCounted reports whether p's ISR holds a member other than node
// that is not draining (see evict).
func othersCounted(s *State, p *Partition, node uint64) bool {
	for _, id := range p.ISR {
		if n, ok := s.nodes[id]; id != node && (!ok || !n.Draining) {
			return true
		}
	}
	return false
}

// electOffline gives every offline partition a leader from its ISR if an
// eligible member is there.
func (a *applier) electOffline() {
	s := a.st()
	for _, name := range sortedTopicNames(s) {
		t, _ := s.topics.get(name)
		var nt *Topic
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader != 0 {
				continue
			}
			l := pickLeader(s, p, 0)
			if l == 0 {
				continue
			}
			if nt == nil {
				nt = cloneTopic(t)
				a.putTopic(name, nt)
			}
			np := &nt.Partitions[i]
			np.Leader = l
			np.LeaderEpoch++
			np.PartitionEpoch++
			a.emit(Event{Type: EventPartitionChanged, Topic: name, TopicID: nt.ID, Partition: np.Partition})
		}
	}
}

// pickLeader returns the first eligible ISR member other than exclude, in
// replica order (so the preferred leader first), or 0.
func pickLeader(s *State, p *Partition, exclude uint64) uint64 {
	for _, r := range p.Replicas {
		if r != exclude && p.InISR(r) && s.eligible(r) {
			return r
		}
	}
	return 0
}

func sortedTopicNames(s *State) []string {
	names := make([]string, 0, s.topics.n)
	s.topics.each(func(t *Topic) { names = append(names, t.Name) })
	slices.Sort(names)
	return names
}

func (a *applier) createTopic(c *command) result {
	if err := ValidTopicName(c.Topic); err != nil {
		return result{err: err}
	}
	if _, ok := a.prev.topics.get(c.Topic); ok {
		return result{err: fmt.Errorf("%w: %q", ErrTopicExists, c.Topic)}
	}
	if c.Config == nil {
		return result{err: fmt.Errorf("%w: no topic config", ErrInvalidArgument)}
	}
	live := liveNodes(a.prev)
	cfg, err := withDefaults(*c.Config, len(live))
	if err != nil {
		return result{err: err}
	}
	s := a.st()
	t := &Topic{Name: c.Topic, ID: a.index, Config: cfg,
		Partitions: assign(live, cfg.Partitions, cfg.ReplicationFactor, s.created)}
	s.created++
	a.putTopic(c.Topic, t)
	a.emit(Event{Type: EventTopicCreated, Topic: t.Name, TopicID: t.ID})
	return result{topic: t}
}

func (a *applier) deleteTopic(c *command) result {
	t, ok := a.prev.topics.get(c.Topic)
	if !ok {
		return result{err: fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)}
	}
	a.putTopic(c.Topic, nil)
	a.offsets.deleteTopic(c.Topic)
	a.emit(Event{Type: EventTopicDeleted, Topic: t.Name, TopicID: t.ID})
	return result{topic: t}
}

// lookup finds the partition a command names.
func (a *applier) lookup(c *command) (*Topic, *Partition, error) {
	t, ok := a.prev.topics.get(c.Topic)
	if !ok || c.TopicID != 0 && t.ID != c.TopicID {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)
	}
	if c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return nil, nil, fmt.Errorf("%w: %q/%d", ErrUnknownPartition, c.Topic, c.Partition)
	}
	return t, &t.Partitions[c.Partition], nil
}

func (a *applier) electLeader(c *command) result {
	t, p, err := a.lookup(c)
	if err != nil {
		return result{err: err}
	}
	if p.PartitionEpoch != c.PartitionEpoch {
		return result{err: fmt.Errorf("%w: partition epoch %d, not %d", ErrStaleEpoch, p.PartitionEpoch, c.PartitionEpoch)}
	}
	if !p.InISR(c.Leader) || !a.prev.eligible(c.Leader) {
		return result{err: fmt.Errorf("%w: node %d is not an eligible ISR member", ErrInvalidArgument, c.Leader)}
	}
	if p.Leader == c.Leader {
		return result{part: *p}
	}
	nt := cloneTopic(t)
	np := &nt.Partitions[c.Partition]
	np.Leader = c.Leader
	np.LeaderEpoch++
	np.PartitionEpoch++
	a.putTopic(t.Name, nt)
	a.emit(Event{Type: EventPartitionChanged, Topic: t.Name, TopicID: t.ID, Partition: c.Partition})
	return result{part: *np}
}

func (a *applier) alterISR(c *command) result {
	t, p, err := a.lookup(c)
	if err != nil {
		return result{err: err}
	}
	if p.Leader != c.From || p.LeaderEpoch != c.LeaderEpoch || p.PartitionEpoch != c.PartitionEpoch {
		return result{err: fmt.Errorf("%w: %q/%d has leader %d epochs %d/%d; request from %d with %d/%d",
			ErrStaleEpoch, t.Name, c.Partition, p.Leader, p.LeaderEpoch, p.PartitionEpoch,
			c.From, c.LeaderEpoch, c.PartitionEpoch)}
	}
	isr, err := a.checkISR(p, c.ISR)
	if err != nil {
		return result{err: err}
	}
	if slices.Equal(isr, p.ISR) {
		return result{part: *p}
	}
	nt := cloneTopic(t)
	np := &nt.Partitions[c.Partition]
	np.ISR = isr
	np.PartitionEpoch++
	a.putTopic(t.Name, nt)
	a.emit(Event{Type: EventPartitionChanged, Topic: t.Name, TopicID: t.ID, Partition: c.Partition})
	return result{part: *np}
}

// checkISR validates a proposed ISR and returns it in replica order. Members
// must be replicas, the leader must be one, and members joining must be
// eligible.
func (a *applier) checkISR(p *Partition, isr []uint64) ([]uint64, error) {
	if !slices.Contains(isr, p.Leader) {
		return nil, fmt.Errorf("%w: ISR %v lacks the leader %d", ErrInvalidArgument, isr, p.Leader)
	}
	out := make([]uint64, 0, len(isr))
	for _, r := range p.Replicas {
		if slices.Contains(isr, r) {
			if !p.InISR(r) && !a.prev.eligible(r) {
				return nil, fmt.Errorf("%w: node %d may not join the ISR", ErrInvalidArgument, r)
			}
			out = append(out, r)
		}
	}
	if len(out) != len(isr) {
		return nil, fmt.Errorf("%w: ISR %v is not a set of replicas %v", ErrInvalidArgument, isr, p.Replicas)
	}
	return out, nil
}

func (a *applier) commitOffset(c *command) result {
	if _, _, err := a.lookup(c); err != nil {
		return result{err: err}
	}
	if c.Group == "" || c.Offset < 0 {
		return result{err: fmt.Errorf("%w: group %q offset %d", ErrInvalidArgument, c.Group, c.Offset)}
	}
	a.offsets.set(c.Group, c.Topic, c.Partition, c.Offset)
	return result{}
}
