package transport

import (
	"sync"
	"sync/atomic"
)

// Default bounds of one MemNetwork link's queue. A Send that would exceed
// either is dropped, counted, and returns ErrQueueFull.
const (
	// MemQueueLen is the most messages that wait on one link (from one node
	// to another) at a time, those being delivered included.
	MemQueueLen = 4096
	// MemQueueBytes is the most payload bytes that wait on one link.
	MemQueueBytes = 64 << 20
)

// MemNetwork is an in-memory network between nodes of one process, with
// faults injected on demand: dropped messages, delays, isolated nodes and
// partitions. It is the Transport of replog's LocalCluster and of tests.
//
// Every directed link (from, to) has its own bounded FIFO queue and its own
// delivery goroutine, which drains the queue in bursts and calls the
// receiver's Handler; messages on one link therefore arrive in order, one
// Handler call at a time, and links never wait for one another.
//
// Fault decisions are deterministic for a seed: each link draws from its own
// random source, derived from the seed and the link's two node IDs, so the
// decision on the k-th message sent on a link depends only on the seed, the
// faults in force and the messages sent before it on that link, never on
// other links' traffic or on goroutine scheduling.
//
// The network owns its goroutines (one per link that has carried a message);
// Close stops them all and waits for them. Delays use the runtime's timers,
// so a MemNetwork created inside a testing/synctest bubble runs on the
// bubble's fake clock. A MemNetwork must then be created and closed inside
// the bubble.
type MemNetwork struct {
	seed   int64
	done   chan struct{} // closed by Close: link goroutines exit
	wg     sync.WaitGroup
	closed atomic.Bool

	faults atomic.Pointer[faultState] // immutable; replaced under mu

	// links maps linkKey to *memLink; endpoints maps a node ID to its
	// current *MemEndpoint. Both are read on every Send and delivery, and
	// written rarely.
	links     sync.Map
	endpoints sync.Map

	mu struct {
		sync.Mutex
		allLinks []*memLink // every link ever made, for Stats and Close
	}
}

// NewMemNetwork returns an empty, healthy network whose fault decisions
// derive from seed.
func NewMemNetwork(seed int64) *MemNetwork {
	n := &MemNetwork{seed: seed, done: make(chan struct{})}
	n.faults.Store(&faultState{})
	return n
}

// Endpoint returns node id's Transport on this network. While that endpoint
// is open, every call returns the same one; once it is closed, the next call
// returns a fresh endpoint (a restarted node) that must be started again.
// Messages already queued towards id are delivered to whichever endpoint is
// open and started when their turn comes; if none is, they are dropped.
func (n *MemNetwork) Endpoint(id uint64) *MemEndpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v, ok := n.endpoints.Load(id); ok {
		if ep := v.(*MemEndpoint); !ep.isClosed() {
			return ep
		}
	}
	ep := &MemEndpoint{net: n, id: id}
	if n.closed.Load() {
		ep.closed.Store(true)
	}
	n.endpoints.Store(id, ep)
	return ep
}

// Close closes every endpoint, stops every delivery goroutine and waits for
// them. Messages still queued are discarded, uncounted. A second call
// returns ErrClosed. A Handler must not call it.
func (n *MemNetwork) Close() error {
	n.mu.Lock()
	if n.closed.Swap(true) {
		n.mu.Unlock()
		return ErrClosed
	}
	var eps []*MemEndpoint
	n.endpoints.Range(func(_, v any) bool {
		eps = append(eps, v.(*MemEndpoint))
		return true
	})
	n.mu.Unlock()
	for _, ep := range eps {
		_ = ep.Close() // ErrClosed for endpoints already closed
	}
	close(n.done)
	n.wg.Wait()
	return nil
}

// link returns the link from→to, creating it and its delivery goroutine on
// first use. It returns nil once the network is closed.
func (n *MemNetwork) link(from, to uint64) *memLink {
	k := linkKey{from, to}
	if v, ok := n.links.Load(k); ok {
		return v.(*memLink)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if v, ok := n.links.Load(k); ok {
		return v.(*memLink)
	}
	if n.closed.Load() {
		return nil
	}
	l := newMemLink(n, k)
	n.links.Store(k, l)
	n.mu.allLinks = append(n.mu.allLinks, l)
	n.wg.Add(1)
	go l.run()
	return l
}

// endpoint returns the endpoint currently registered for id, or nil.
func (n *MemNetwork) endpoint(id uint64) *MemEndpoint {
	if v, ok := n.endpoints.Load(id); ok {
		return v.(*MemEndpoint)
	}
	return nil
}

// MemEndpoint is one node's Transport on a MemNetwork. It is safe for
// concurrent use.
type MemEndpoint struct {
	net     *MemNetwork
	id      uint64
	started atomic.Bool
	closed  atomic.Bool

	// mu guards the handler and counts the Handler calls running, so that
	// Close can wait for them on a channel (a wait testing/synctest sees as
	// durable, unlike a blocked mutex).
	mu struct {
		sync.Mutex
		h       Handler
		running int           // Handler calls in progress
		idle    chan struct{} // made by Close when running > 0; closed at 0
	}
}

var _ Transport = (*MemEndpoint)(nil)

// ID is the node ID this endpoint sends from.
func (e *MemEndpoint) ID() uint64 { return e.id }

// Start installs h; from then on h receives the messages delivered to this
// node. It returns ErrStarted when called twice, ErrClosed after Close.
func (e *MemEndpoint) Start(h Handler) error {
	if h == nil {
		return ErrNilHandler
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	if e.mu.h != nil {
		return ErrStarted
	}
	e.mu.h = h
	e.started.Store(true)
	return nil
}

// Send queues msg on the link to node to and returns at once. A message
// the network's faults drop (isolation, partition, a link's Drop rate)
// is dropped silently, as a real network would: Send returns nil. A message
// that finds the link's queue full is dropped too, and Send returns
// ErrQueueFull. Send returns ErrClosed after Close and ErrNotStarted before
// Start. The network owns msg afterwards. A node may send to itself here;
// transport/tcp refuses that (ErrUnknownPeer), so portable code handles
// its own messages without the transport.
func (e *MemEndpoint) Send(to uint64, msg []byte) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if !e.started.Load() {
		return ErrNotStarted
	}
	l := e.net.link(e.id, to)
	if l == nil {
		return ErrClosed
	}
	return l.send(msg)
}

// Close stops delivery to this endpoint and returns once no Handler call is
// running or will start. Messages this endpoint sent before Close may still
// be delivered. A Handler must not call Close on its own endpoint.
func (e *MemEndpoint) Close() error {
	e.mu.Lock()
	if e.closed.Swap(true) {
		e.mu.Unlock()
		return ErrClosed
	}
	e.mu.h = nil
	var idle chan struct{}
	if e.mu.running > 0 {
		idle = make(chan struct{})
		e.mu.idle = idle
	}
	e.mu.Unlock()
	if idle != nil {
		<-idle
	}
	return nil
}

// enter returns the handler to call, counting the call as running, or nil
// if the endpoint is not started or closed. Each non-nil enter is paired
// with one exit.
func (e *MemEndpoint) enter() Handler {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.h != nil {
		e.mu.running++
	}
	return e.mu.h
}

func (e *MemEndpoint) exit() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.running--
	if e.mu.running == 0 && e.mu.idle != nil {
		close(e.mu.idle)
		e.mu.idle = nil
	}
}

func (e *MemEndpoint) isClosed() bool { return e.closed.Load() }
