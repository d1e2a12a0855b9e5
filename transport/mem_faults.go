package transport

import (
	"maps"
	"time"
)

// LinkFaults are the faults of one directed link of a MemNetwork.
type LinkFaults struct {
	// Drop is the probability, in [0, 1], that a message sent on the link
	// is lost. Values outside the range are clamped.
	Drop float64
	// Delay is how long after Send each message is delivered. Messages on a
	// link still arrive in order: a message never overtakes one sent
	// before it, even if the Delay was lowered in between. Negative is 0.
	Delay time.Duration
}

// linkKey names a directed link.
type linkKey struct{ from, to uint64 }

// faultState is the set of faults in force. It is immutable once published
// through MemNetwork.faults; changes copy it.
type faultState struct {
	isolated map[uint64]bool
	// group maps a node to its partition group, counted from 1; nodes not
	// named are in group 0. nil: no partition.
	group map[uint64]int
	links map[linkKey]LinkFaults
}

// cut reports whether isolation or a partition keeps from's messages from
// reaching to. A node always reaches itself.
func (s *faultState) cut(from, to uint64) bool {
	if from == to {
		return false
	}
	if s.isolated != nil && (s.isolated[from] || s.isolated[to]) {
		return true
	}
	if s.group != nil && s.group[from] != s.group[to] {
		return true
	}
	return false
}

// link returns the faults of link k.
func (s *faultState) link(k linkKey) LinkFaults {
	if s.links == nil {
		return LinkFaults{}
	}
	return s.links[k]
}

func (s *faultState) clone() *faultState {
	return &faultState{
		isolated: maps.Clone(s.isolated),
		group:    maps.Clone(s.group),
		links:    maps.Clone(s.links),
	}
}

// update applies f to a copy of the fault state and publishes it.
func (n *MemNetwork) update(f func(s *faultState)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.faults.Load().clone()
	f(s)
	n.faults.Store(s)
}

// Isolate cuts node id off from every other node, both ways, until Heal.
// Messages already queued to or from it are dropped when their turn comes.
func (n *MemNetwork) Isolate(id uint64) {
	n.update(func(s *faultState) {
		if s.isolated == nil {
			s.isolated = make(map[uint64]bool)
		}
		s.isolated[id] = true
	})
}

// Partition splits the network into groups: nodes reach each other only
// within a group. Nodes named in no group form one more group together, so
// Partition([]uint64{1}) cuts node 1 off from the rest, which still reach
// one another. A node named in several groups belongs to the last.
// Partition replaces any earlier partition; isolation and link faults stay.
// With no groups, it removes the partition. Messages already queued across
// the cut are dropped when their turn comes.
func (n *MemNetwork) Partition(groups ...[]uint64) {
	n.update(func(s *faultState) {
		if len(groups) == 0 {
			s.group = nil
			return
		}
		s.group = make(map[uint64]int)
		for i, g := range groups {
			for _, id := range g {
				s.group[id] = i + 1
			}
		}
	})
}

// SetLink sets the faults of the directed link from→to, replacing earlier
// ones; LinkFaults{} restores a healthy link. The reverse link is not
// touched.
func (n *MemNetwork) SetLink(from, to uint64, f LinkFaults) {
	f.Drop = min(max(f.Drop, 0), 1)
	f.Delay = max(f.Delay, 0)
	n.update(func(s *faultState) {
		if s.links == nil {
			s.links = make(map[linkKey]LinkFaults)
		}
		if f == (LinkFaults{}) {
			delete(s.links, linkKey{from, to})
			return
		}
		s.links[linkKey{from, to}] = f
	})
}

// Heal removes every fault: isolation, partition and link faults. Messages
// dropped before stay lost; messages still queued with a delay keep it.
func (n *MemNetwork) Heal() {
	n.update(func(s *faultState) { *s = faultState{} })
}
