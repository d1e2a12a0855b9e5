package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// State returns the applied metadata: an immutable snapshot, read without a
// lock. It may trail the group by what is in flight; see Topic for a
// lease-checked read and Barrier for a linearizable one.
func (n *Node) State() *State { return n.state.Load() }

// Incarnation returns this node's current incarnation, or 0 until its
// registration is applied.
func (n *Node) Incarnation() uint64 { return n.inc.Load() }

// Controller returns the ID of the raft leader, which runs the controller,
// or 0 when none is known.
func (n *Node) Controller() uint64 { return n.leader.Load() }

// CommittedOffset returns a consumer group's committed offset for one
// partition, as applied on this node.
func (n *Node) CommittedOffset(group, topic string, partition int32) (int64, bool) {
	return n.offsets.Load().get(group, topic, partition)
}

// leaseValid reports whether this node's State is fresh by lease: the
// lease has not run out on the clock, the driver still runs, and this node
// has applied every entry it knows committed (the leader sends a commit
// before it applies it: a follower may apply it, and its caller return,
// first).
func (n *Node) leaseValid() bool {
	select {
	case <-n.done:
		return false
	default:
	}
	return n.clock() < time.Duration(n.lease.Load()) && n.appliedIdx.applied.Load() >= n.commit.Load()
}

// InSession reports whether this node is in touch with the controller: a
// heartbeat it sent within SessionTimeout was acknowledged by the
// controller, or, being the raft leader (which runs the controller), a
// quorum acknowledged it within SessionTimeout. The controller fences a
// node no earlier than SessionTimeout after the last heartbeat it took,
// so a node stops being in session before it can have been fenced (its
// leaderships given to others). It answers from memory, without IO.
// False after Close, and while no controller acknowledges (an election
// that outlasts what is left of the session).
func (n *Node) InSession() bool {
	select {
	case <-n.done:
		return false
	default:
	}
	return n.clock() < time.Duration(n.session.Load())
}

// Barrier waits until this node has applied everything the group had
// committed when Barrier was called (one ReadIndex round trip to the raft
// leader, confirmed by a quorum). After it returns nil, State is
// linearizable. It returns ctx's error (wrapped) when no quorum answers in
// time, e.g. on a node cut off from the majority, and ErrClosed after Close.
func (n *Node) Barrier(ctx context.Context) error {
	r := &readReq{ctx: ctx, resp: make(chan struct{})}
	if err := send(ctx, n, n.readc, r); err != nil {
		return err
	}
	select {
	case <-r.resp:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("meta: read barrier: %w", ctx.Err())
	case <-n.done:
		return n.closedErr()
	}
}

// Topic returns the named topic, lease-checked: read locally while this
// node holds a lease (the leader: a quorum acknowledged it recently; a
// follower: it heard from the leader recently), else after a Barrier. A
// topic missing locally is confirmed with a Barrier before ErrUnknownTopic,
// so a topic whose CreateTopic returned is found on every node. Errors:
// ErrUnknownTopic, ctx's error when no quorum answers, ErrClosed.
func (n *Node) Topic(ctx context.Context, name string) (*Topic, error) {
	if n.leaseValid() {
		if t, ok := n.State().Topic(name); ok {
			return t, nil
		}
	}
	return n.LinearizableTopic(ctx, name)
}

// LinearizableTopic is Topic through a Barrier, always.
func (n *Node) LinearizableTopic(ctx context.Context, name string) (*Topic, error) {
	if err := n.Barrier(ctx); err != nil {
		return nil, err
	}
	if t, ok := n.State().Topic(name); ok {
		return t, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
}

// Topics returns every topic, sorted by name: read locally on the raft
// leader while it holds a lease, else after a Barrier. (A follower's lease
// read, which Topic uses for a topic it has, could miss a topic whose
// CreateTopic returned; Topics cannot tell what it misses.)
func (n *Node) Topics(ctx context.Context) ([]*Topic, error) {
	if n.Controller() != n.cfg.ID || !n.leaseValid() {
		if err := n.Barrier(ctx); err != nil {
			return nil, err
		}
	}
	return n.State().Topics(), nil
}

// propose proposes c and waits until it is applied on this node, returning
// its outcome.
func (n *Node) propose(ctx context.Context, c *command) (result, error) {
	p := &proposal{ctx: ctx, cmd: c, resp: make(chan result, 1)}
	if err := send(ctx, n, n.propc, p); err != nil {
		return result{}, err
	}
	select {
	case r := <-p.resp:
		return r, r.err
	case <-ctx.Done():
		return result{}, fmt.Errorf("meta: proposal: %w (outcome unknown)", ctx.Err())
	case <-n.done:
		return result{}, n.closedErr()
	}
}

// CreateTopic creates a topic and returns it once applied on this node.
// Replicas are placed over the live nodes, balanced; every partition starts
// with its preferred replica as leader and all replicas in the ISR, so every
// partition has a leader when CreateTopic returns. Too few live nodes for
// the replication factor is an error (ErrNotEnoughNodes) only once every
// peer has registered at least once: while some peer never has (the
// cluster is starting, this node included), CreateTopic waits for the
// registrations within ctx. Errors: ErrInvalidArgument (name, partitions,
// min ISR), ErrTopicExists, ErrNotEnoughNodes, ctx's error, ErrClosed.
// After a ctx error the topic may or may not exist.
func (n *Node) CreateTopic(ctx context.Context, name string, cfg TopicConfig) (*Topic, error) {
	if err := validNewTopicName(name); err != nil {
		return nil, err
	}
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("%w: %d partitions", ErrInvalidArgument, cfg.Partitions)
	}
	var w *Watcher // made before a proposal that may have to wait: no registration is missed
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	for {
		if w == nil && n.awaitingPeers() {
			w = n.Watch()
		}
		r, err := n.propose(ctx, &command{Op: opCreateTopic, Topic: name, Config: &cfg})
		if !errors.Is(err, ErrNotEnoughNodes) || w == nil {
			return r.topic, err
		}
		if !n.awaitingPeers() {
			// Every peer registered since w was made: go again, and a
			// shortage from now on is the caller's to know.
			w.Close()
			w = nil
			continue
		}
		if _, err := w.Next(ctx); err != nil {
			return nil, fmt.Errorf("meta: create topic %q, waiting for peers to register: %w", name, err)
		}
	}
}

// awaitingPeers reports whether some peer has never registered (as this
// node's State shows).
func (n *Node) awaitingPeers() bool {
	s := n.State()
	for _, id := range n.cfg.Peers {
		if _, ok := s.nodes[id]; !ok {
			return true
		}
	}
	return false
}

// DeleteTopic deletes a topic and its committed offsets. It returns once
// every node holding a replica of the topic has applied the deletion, or
// has been fenced (a node that stopped is waited for until the controller
// fences it, SessionTimeout after its last heartbeat): from then on no node
// serves the deleted topic, even one whose metadata lagged, so a topic
// created again under the name is the only one appends and reads reach.
// (Except a fenced node that still runs, cut off from the group: its
// local State shows the topic until it learns of the deletion, though it
// is out of session by then: see InSession.)
// ErrUnknownTopic likewise waits until every registered node has applied
// what the group had applied then: after an error, the caller can call
// again until nil or ErrUnknownTopic. Errors: ErrUnknownTopic, ctx's error,
// ErrClosed. After a ctx error the topic may or may not be deleted, and if
// it is, a node may not know yet.
func (n *Node) DeleteTopic(ctx context.Context, name string) error {
	r, err := n.propose(ctx, &command{Op: opDeleteTopic, Topic: name})
	if err != nil && !errors.Is(err, ErrUnknownTopic) {
		return err
	}
	// The replicas are in the result, unless the topic was unknown or the
	// command a retry applied before (r.dup): then every node is asked.
	nodes := n.cfg.Peers
	if r.topic != nil {
		nodes = nil
		for _, p := range r.topic.Partitions {
			for _, id := range p.Replicas {
				if !slices.Contains(nodes, id) {
					nodes = append(nodes, id)
				}
			}
		}
	}
	if werr := n.waitApplied(ctx, r.index, nodes); werr != nil {
		return werr
	}
	return err
}

// AlterISR sets a partition's ISR on behalf of its leader, this node. It is
// applied only if the topic of that name has ID topicID (0: any; a request
// for a topic since deleted must not change one created again), this node
// is the leader, and leaderEpoch and partitionEpoch are the partition's
// current ones; it returns the new
// partition record (PartitionEpoch+1). The ISR must contain the leader and
// be a set of replicas; members joining it must be eligible (registered,
// unfenced, healthy). Errors: ErrStaleEpoch, ErrInvalidArgument,
// ErrUnknownTopic, ErrUnknownPartition, ctx's error, ErrClosed.
func (n *Node) AlterISR(ctx context.Context, topic string, topicID uint64, partition int32, leaderEpoch, partitionEpoch int32, isr []uint64) (Partition, error) {
	r, err := n.propose(ctx, &command{Op: opAlterISR, Topic: topic, TopicID: topicID, Partition: partition,
		LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch, ISR: slices.Clone(isr)})
	return r.part, err
}

// Drain starts a controlled shutdown of this node: every partition it leads
// moves to another eligible ISR member (epoch+1); it leads nothing new
// until it registers again (next Open). Call before Close. Errors:
// ErrUnknownNode (not registered yet), ctx's error, ErrClosed.
func (n *Node) Drain(ctx context.Context) error {
	return n.setFlag(ctx, opDrain, true)
}

// SetUnhealthy reports this node's storage as stalled (true) or recovered
// (false). While unhealthy it leads nothing another eligible ISR member can
// lead, and joins no ISR. Errors as Drain.
func (n *Node) SetUnhealthy(ctx context.Context, unhealthy bool) error {
	return n.setFlag(ctx, opSetUnhealthy, unhealthy)
}

func (n *Node) setFlag(ctx context.Context, o op, v bool) error {
	inc := n.Incarnation()
	if inc == 0 {
		return fmt.Errorf("%w: node %d has not registered yet", ErrUnknownNode, n.cfg.ID)
	}
	_, err := n.propose(ctx, &command{Op: o, Node: n.cfg.ID, Incarnation: inc, Flag: v})
	return err
}

// CommitOffset records a consumer group's committed offset for one
// partition. Errors: ErrUnknownTopic, ErrUnknownPartition,
// ErrInvalidArgument (empty group, negative offset), ctx's error, ErrClosed.
func (n *Node) CommitOffset(ctx context.Context, group, topic string, partition int32, offset int64) error {
	_, err := n.propose(ctx, &command{Op: opCommitOffset, Group: group, Topic: topic,
		Partition: partition, Offset: offset})
	return err
}
