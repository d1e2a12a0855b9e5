package tcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/replog/replog/transport"
)

// Transport is a transport.Transport over TCP: one persistent connection
// per pair of nodes, dialled by the node with the lower ID and used in both
// directions. Create one with New, Start it, Close it.
//
// Goroutines, all owned by the Transport and stopped by Close: one accept
// loop; one per inbound connection while it handshakes; per peer, one that
// connects (dials with backoff, or waits for the peer to dial) and writes,
// and one that reads the current connection and calls the Handler.
type Transport struct {
	cfg    Config
	ln     net.Listener
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	handler transport.Handler // set by Start, before any goroutine reads it
	started atomic.Bool
	closed  atomic.Bool

	peers atomic.Pointer[map[uint64]*peer] // immutable; replaced under mu

	// handshakes holds a token per inbound handshake running: past
	// maxHandshakes, a connection is closed at once (a flood of
	// connections that never say hello would each hold a goroutine and a
	// descriptor for HandshakeTimeout).
	handshakes chan struct{}

	mu struct {
		sync.Mutex
		rnd *rand.Rand // backoff jitter
	}
	stats stats
}

var _ transport.Transport = (*Transport)(nil)

// New validates cfg, listens and returns a Transport that is not started
// yet: inbound connections wait in the listen backlog until Start. It owns
// cfg.Listener from the call on: a New that fails has closed it.
func New(cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		if cfg.Listener != nil {
			_ = cfg.Listener.Close() // the config error is the one to report
		}
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("tcp: listen on %s: %w", cfg.ListenAddr, err)
		}
	}
	t := &Transport{cfg: cfg, ln: ln, handshakes: make(chan struct{}, maxHandshakes)}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.mu.rnd = rand.New(cfg.Rand)
	peers := make(map[uint64]*peer, len(cfg.Peers))
	for id, addr := range cfg.Peers {
		if id != cfg.ID {
			peers[id] = newPeer(t, id, addr)
		}
	}
	t.peers.Store(&peers)
	return t, nil
}

// Addr is the address the Transport listens on.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// MaxMessageSize is the largest message Send delivers (Config.MaxFrameSize):
// it implements transport.MessageLimiter.
func (t *Transport) MaxMessageSize() int { return t.cfg.MaxFrameSize }

// ID is this node's ID.
func (t *Transport) ID() uint64 { return t.cfg.ID }

// Start installs h and starts accepting and connecting to peers. It returns
// transport.ErrStarted when called twice, transport.ErrClosed after Close.
func (t *Transport) Start(h transport.Handler) error {
	if h == nil {
		return transport.ErrNilHandler
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return transport.ErrClosed
	}
	if t.started.Load() {
		return transport.ErrStarted
	}
	t.handler = h
	t.started.Store(true)
	for _, p := range *t.peers.Load() {
		p.start()
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return nil
}

// Send queues msg for node to and returns at once; the peer's writer
// goroutine sends it when the connection is up. It returns
// transport.ErrQueueFull if the peer's queue is full (msg is dropped),
// ErrMessageTooLarge above MaxFrameSize, transport.ErrUnknownPeer for an ID
// with no peer (this node's own ID included), transport.ErrNotStarted
// before Start and transport.ErrClosed after Close. The Transport owns msg
// afterwards.
func (t *Transport) Send(to uint64, msg []byte) error {
	if !t.started.Load() {
		return transport.ErrNotStarted
	}
	if t.closed.Load() {
		return transport.ErrClosed
	}
	if len(msg) > t.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, len(msg))
	}
	p := (*t.peers.Load())[to]
	if p == nil {
		return fmt.Errorf("%w: %d", transport.ErrUnknownPeer, to)
	}
	return p.enqueue(msg)
}

// AddPeer adds node id at addr. If the Transport is started, this node
// starts dialling it (if id is higher) or accepts its connection (if
// lower) at once. It returns ErrPeerExists if id has a peer already.
func (t *Transport) AddPeer(id uint64, addr string) error {
	if id == 0 || id == t.cfg.ID || addr == "" {
		return fmt.Errorf("%w: peer %d at %q", ErrInvalidConfig, id, addr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return transport.ErrClosed
	}
	old := *t.peers.Load()
	if _, ok := old[id]; ok {
		return fmt.Errorf("%w: %d", ErrPeerExists, id)
	}
	peers := maps.Clone(old)
	p := newPeer(t, id, addr)
	peers[id] = p
	t.peers.Store(&peers)
	if t.started.Load() {
		p.start()
	}
	return nil
}

// RemovePeer forgets node id: its connection is closed, its queued
// messages are dropped, and later connections from it are refused. It
// returns once the peer's goroutines have exited (and so no Handler call
// for it runs), or transport.ErrUnknownPeer.
func (t *Transport) RemovePeer(id uint64) error {
	t.mu.Lock()
	old := *t.peers.Load()
	p, ok := old[id]
	if ok {
		peers := maps.Clone(old)
		delete(peers, id)
		t.peers.Store(&peers)
	}
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %d", transport.ErrUnknownPeer, id)
	}
	p.stop()
	return nil
}

// Close closes the listener and every connection, stops every goroutine and
// waits for them; once it returns no Handler call runs or will start.
// Queued messages are dropped. A second Close returns transport.ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return transport.ErrClosed
	}
	t.mu.Unlock()
	t.cancel()
	err := t.ln.Close()
	t.wg.Wait()
	for _, p := range *t.peers.Load() {
		p.dropQueue()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("tcp: closing listener: %w", err)
	}
	return nil
}

// jitter returns a number in [0, 1) from the configured source.
func (t *Transport) jitter() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.rnd.Float64()
}

// peer returns the peer for id, or nil.
func (t *Transport) peer(id uint64) *peer { return (*t.peers.Load())[id] }

// Stats counts a Transport's messages and connections.
type Stats struct {
	Sent        uint64 // messages written to a connection
	Received    uint64 // messages handed to the Handler
	DroppedFull uint64 // Sends refused with ErrQueueFull
	DroppedLost uint64 // queued or in-flight messages lost with a connection, a removed peer or Close
	Connects    uint64 // connections established, both directions
	Refused     uint64 // connections refused or failed in the handshake
	BadFrames   uint64 // connections closed for an oversize or corrupt frame
}

type stats struct {
	sent, received, droppedFull, droppedLost atomic.Uint64
	connects, refused, badFrames             atomic.Uint64
}

// Stats returns the Transport's counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	return Stats{
		Sent: s.sent.Load(), Received: s.received.Load(),
		DroppedFull: s.droppedFull.Load(), DroppedLost: s.droppedLost.Load(),
		Connects: s.connects.Load(), Refused: s.refused.Load(), BadFrames: s.badFrames.Load(),
	}
}
