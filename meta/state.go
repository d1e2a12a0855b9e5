package meta

import (
	"slices"
	"time"
)

// NodeInfo is what the metadata knows about one registered node.
type NodeInfo struct {
	ID uint64 `json:"id"`
	// Incarnation grows by one each time the node registers (each Open).
	Incarnation uint64 `json:"inc"`
	// Nonce identifies the Open that registered this incarnation.
	Nonce uint64 `json:"nonce"`
	// Fenced: the controller heard nothing from this incarnation for
	// SessionTimeout. A fenced node leads nothing and leaves every ISR in
	// which it is not the last member.
	Fenced bool `json:"fenced,omitempty"`
	// Draining: the node asked to shut down; it leads nothing that another
	// ISR member can lead. Cleared when it registers again.
	Draining bool `json:"draining,omitempty"`
	// Unhealthy: the node reported its storage stalled; as Draining, until
	// it reports itself healthy or registers again.
	Unhealthy bool `json:"unhealthy,omitempty"`
}

// Eligible reports whether the node may lead partitions or join an ISR.
func (n NodeInfo) Eligible() bool { return !n.Fenced && !n.Draining && !n.Unhealthy }

// TopicConfig configures a topic. Zero fields take the documented defaults
// when the topic is created; the stored config has them filled in.
type TopicConfig struct {
	Partitions        int32         `json:"partitions"`
	ReplicationFactor int           `json:"rf"`                 // default min(3, live nodes)
	MinInSyncReplicas int           `json:"minisr"`             // default RF/2+1
	RetentionBytes    int64         `json:"retbytes,omitempty"` // per partition; 0 keeps all
	RetentionTime     time.Duration `json:"rettime,omitempty"`  // 0 keeps all
}

// Partition is one partition's assignment and leadership.
type Partition struct {
	Partition int32    `json:"p"`
	Replicas  []uint64 `json:"replicas"` // Replicas[0] is the preferred leader
	ISR       []uint64 `json:"isr"`      // in Replicas order
	// Leader is 0 while the partition is offline (no eligible ISR member).
	Leader uint64 `json:"leader"`
	// LeaderEpoch grows with every change of leader and every restart of
	// the leader's node (a new incarnation).
	LeaderEpoch int32 `json:"lepoch"`
	// PartitionEpoch grows with every change of this record (leader or ISR).
	PartitionEpoch int32 `json:"pepoch"`
}

// InISR reports whether node id is in the partition's ISR.
func (p *Partition) InISR(id uint64) bool { return slices.Contains(p.ISR, id) }

// Topic is one topic. Values reachable from a State are immutable: callers
// must not modify them, and may keep them as long as they like.
type Topic struct {
	Name string `json:"name"`
	// ID is the raft index that created the topic: a topic deleted and
	// created again under the same name has a different ID.
	ID         uint64      `json:"id"`
	Config     TopicConfig `json:"config"`
	Partitions []Partition `json:"partitions"`
}

// State is the applied metadata at one raft index: an immutable value.
// Every apply produces a new State that shares what did not change with the
// previous one. Reading a State takes no lock; lookups allocate nothing.
type State struct {
	index   uint64
	nodes   map[uint64]NodeInfo
	topics  topicMap
	created uint64 // topics ever created: rotates replica placement
}

// topicShards is the number of maps the topics are spread over, so that a
// change copies one small map, not all topics.
const topicShards = 256

// topicMap maps names to topics in shards by a hash of the name. A State's
// topicMap is immutable; a new State copies the array and, copy on write,
// only the shards it changes.
type topicMap struct {
	shards [topicShards]map[string]*Topic
	n      int
}

// shardOf is FNV-1a of name, reduced to a shard: cheap, deterministic.
func shardOf(name string) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % topicShards)
}

func (m *topicMap) get(name string) (*Topic, bool) {
	t, ok := m.shards[shardOf(name)][name]
	return t, ok
}

func (m *topicMap) each(f func(*Topic)) {
	for _, sh := range m.shards {
		for _, t := range sh {
			f(t)
		}
	}
}

func emptyState() *State {
	return &State{nodes: map[uint64]NodeInfo{}}
}

// Index is the raft index of the last command applied into this State.
func (s *State) Index() uint64 { return s.index }

// Topic returns the named topic. It allocates nothing.
func (s *State) Topic(name string) (*Topic, bool) {
	return s.topics.get(name)
}

// TopicDeleted reports whether the topic of ID id (the raft index that
// created it) was created and then deleted as of this State: it is at or
// below the State's index, and no topic has it. It looks at every topic.
func (s *State) TopicDeleted(id uint64) bool {
	if id == 0 || id > s.index {
		return false // not created as of this State, or no ID
	}
	found := false
	s.topics.each(func(t *Topic) { found = found || t.ID == id })
	return !found
}

// Partition returns one partition of a topic.
func (s *State) Partition(topic string, partition int32) (*Partition, bool) {
	t, ok := s.topics.get(topic)
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, false
	}
	return &t.Partitions[partition], true
}

// Topics returns every topic, sorted by name, in a new slice the caller owns.
func (s *State) Topics() []*Topic {
	out := make([]*Topic, 0, s.topics.n)
	s.topics.each(func(t *Topic) { out = append(out, t) })
	slices.SortFunc(out, func(a, b *Topic) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Node returns the record of a registered node.
func (s *State) Node(id uint64) (NodeInfo, bool) {
	n, ok := s.nodes[id]
	return n, ok
}

// Nodes returns every registered node, sorted by ID, in a new slice.
func (s *State) Nodes() []NodeInfo {
	out := make([]NodeInfo, 0, len(s.nodes))
	for _, id := range s.nodeIDs() {
		out = append(out, s.nodes[id])
	}
	return out
}

func (s *State) nodeIDs() []uint64 {
	ids := make([]uint64, 0, len(s.nodes))
	for id := range s.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *State) eligible(id uint64) bool {
	n, ok := s.nodes[id]
	return ok && n.Eligible()
}

// clone returns a shallow copy: the nodes map is copied, topic shards are
// shared until written (see applier.putTopic).
func (s *State) clone() *State {
	c := &State{index: s.index, created: s.created, topics: s.topics,
		nodes: make(map[uint64]NodeInfo, len(s.nodes)+1)}
	for k, v := range s.nodes {
		c.nodes[k] = v
	}
	return c
}

// cloneTopic returns a copy of t whose partitions (and their slices) may be
// modified.
func cloneTopic(t *Topic) *Topic {
	c := *t
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		p.Replicas = slices.Clone(p.Replicas)
		p.ISR = slices.Clone(p.ISR)
		c.Partitions[i] = p
	}
	return &c
}
