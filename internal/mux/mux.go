package mux

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/replog/replog/transport"
)

// Tag names the subsystem a message is for. It is the first byte on the wire
// and part of the protocol: values never change meaning.
type Tag byte

// The subsystems' tags.
const (
	TagRaft        Tag = 1 // meta: etcd raft messages
	TagMeta        Tag = 2 // meta: heartbeats, lease and ReadIndex queries
	TagReplication Tag = 3 // replication: fetches and their answers
	TagForward     Tag = 4 // replication: appends forwarded to a leader
	maxTag             = 8
)

// ErrStarted is returned by Handle after Start: handlers are installed
// before traffic flows, so that no message finds its subsystem missing.
var ErrStarted = errors.New("mux: already started")

// Mux dispatches one Transport's inbound messages by tag and tags outbound
// ones. Register handlers with Handle, then call Start once. Safe for
// concurrent use after Start.
type Mux struct {
	t        transport.Transport
	handlers [maxTag]transport.Handler
	started  atomic.Bool
	mu       sync.Mutex // serialises Handle and Start
	dropped  atomic.Uint64
}

// New returns a Mux over t. t must not have been started.
func New(t transport.Transport) *Mux { return &Mux{t: t} }

// Handle registers h for messages tagged tag. h receives the payload without
// its tag and owns it, as transport.Handler describes. It must be called
// before Start; a tag has one handler.
func (m *Mux) Handle(tag Tag, h transport.Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started.Load() {
		return ErrStarted
	}
	if tag == 0 || int(tag) >= maxTag {
		return fmt.Errorf("mux: tag %d out of range", tag)
	}
	if m.handlers[tag] != nil {
		return fmt.Errorf("mux: tag %d already has a handler", tag)
	}
	m.handlers[tag] = h
	return nil
}

// Start starts the underlying transport with the Mux as its handler.
func (m *Mux) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started.Load() {
		return ErrStarted
	}
	m.started.Store(true)
	return m.t.Start(m.dispatch)
}

func (m *Mux) dispatch(from uint64, msg []byte) {
	if len(msg) == 0 || int(msg[0]) >= maxTag || m.handlers[msg[0]] == nil {
		m.dropped.Add(1)
		return
	}
	m.handlers[msg[0]](from, msg[1:])
}

// Dropped reports how many inbound messages had no handler.
func (m *Mux) Dropped() uint64 { return m.dropped.Load() }

// Sender returns the Sender for tag.
func (m *Mux) Sender(tag Tag) Sender { return Sender{t: m.t, tag: tag} }

// Sender sends one subsystem's messages over the shared transport.
type Sender struct {
	t   transport.Transport
	tag Tag
}

// Tag is the tag this Sender writes.
func (s Sender) Tag() Tag { return s.tag }

// Send sends msg to node to with the sender's tag in front: msg[0] must be
// left free by the caller (see Frame), and is overwritten. The transport
// owns msg afterwards.
func (s Sender) Send(to uint64, msg []byte) error {
	if len(msg) == 0 {
		return errors.New("mux: message has no room for its tag")
	}
	msg[0] = byte(s.tag)
	return s.t.Send(to, msg)
}

// Frame returns a buffer of length 1 and capacity at least 1+n, ready for a
// subsystem to append its payload to and hand to Send. The first byte is the
// room Send writes the tag into.
func Frame(n int) []byte { return make([]byte, 1, 1+n) }
