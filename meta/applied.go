package meta

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// appliedIndexes lets a node wait until other nodes have applied a raft
// index, and answers other nodes' such questions (see waitApplied). It is
// shared by the transport's HandleMeta calls, the driver and waiters, under
// its own mutex, taken alone.
type appliedIndexes struct {
	// applied is this node's applied index, stored by the driver before it
	// takes mu to answer the questions parked in asked.
	applied atomic.Uint64

	mu sync.Mutex
	// asked holds, per node, the highest index that node asked about and
	// this node had not applied yet; answered (and removed) once it has.
	asked map[uint64]uint64
	// heard holds, per node, the highest applied index it told this node.
	heard map[uint64]uint64
	// changed is closed, and replaced, when heard grows.
	changed chan struct{}
}

func (a *appliedIndexes) init() {
	a.asked = map[uint64]uint64{}
	a.heard = map[uint64]uint64{}
	a.changed = make(chan struct{})
}

// onAsk handles node from's question about index: answered at once if
// this node has applied it, else parked for advance.
func (n *Node) onAsk(from, index uint64) {
	a := &n.appliedIdx
	a.mu.Lock()
	applied := a.applied.Load()
	if applied < index {
		a.asked[from] = max(a.asked[from], index)
	}
	a.mu.Unlock()
	if applied >= index {
		n.sendApplied(from, applied)
	}
}

// onApplied records node from's answer.
func (n *Node) onApplied(from, index uint64) {
	a := &n.appliedIdx
	a.mu.Lock()
	defer a.mu.Unlock()
	if index > a.heard[from] {
		a.heard[from] = index
		close(a.changed)
		a.changed = make(chan struct{})
	}
}

// advance publishes the driver's applied index and answers the questions
// it settles. Called by the driver after each apply.
func (n *Node) advance(applied uint64) {
	a := &n.appliedIdx
	if a.applied.Load() == applied {
		return
	}
	a.applied.Store(applied)
	var due []uint64
	a.mu.Lock()
	for from, index := range a.asked {
		if index <= applied {
			due = append(due, from)
			delete(a.asked, from)
		}
	}
	a.mu.Unlock()
	for _, from := range due {
		n.sendApplied(from, applied)
	}
}

// sendApplied tells node to this node's applied index. The transport never
// blocks; a lost answer is asked for again.
func (n *Node) sendApplied(to, applied uint64) {
	_ = n.cfg.Meta.Send(to, appendMeta(make([]byte, 1, 24), metaMsg{kind: metaApplied, node: n.cfg.ID, val: applied}))
}

// waitApplied waits until each of nodes has applied index, or is no longer
// a registered, unfenced node in this node's State. It asks each node that
// has not answered, and asks again every heartbeat interval (messages may
// be lost). A node that stopped is waited for until the controller fences
// it: SessionTimeout after its last heartbeat, as this node learns it.
// Errors: ctx's error (wrapped, naming the nodes still waited for),
// ErrClosed.
func (n *Node) waitApplied(ctx context.Context, index uint64, nodes []uint64) error {
	a := &n.appliedIdx
	retry := time.NewTimer(time.Duration(n.cfg.heartbeatTicks()) * n.cfg.TickInterval)
	defer retry.Stop()
	for ask := true; ; {
		s := n.State()
		a.mu.Lock()
		changed := a.changed
		pending := slices.DeleteFunc(slices.Clone(nodes), func(id uint64) bool {
			info, ok := s.nodes[id]
			return id == n.cfg.ID || !ok || info.Fenced || a.heard[id] >= index
		})
		a.mu.Unlock()
		if len(pending) == 0 {
			return nil
		}
		if ask {
			for _, id := range pending {
				_ = n.cfg.Meta.Send(id, appendMeta(make([]byte, 1, 24), metaMsg{kind: metaAsk, node: n.cfg.ID, val: index}))
			}
			ask = false
		}
		select {
		case <-changed:
		case <-retry.C:
			retry.Reset(time.Duration(n.cfg.heartbeatTicks()) * n.cfg.TickInterval)
			ask = true
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting for nodes %v to apply index %d: %w", pending, index, ctx.Err())
		case <-n.done:
			return n.closedErr()
		}
	}
}
