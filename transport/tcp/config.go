package tcp

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"
)

// Defaults of the Config fields left zero.
const (
	DefaultMaxFrameSize     = 16 << 20
	DefaultQueueLen         = 8192
	DefaultQueueBytes       = 64 << 20
	DefaultBufferSize       = 256 << 10
	DefaultDialTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMinBackoff       = 50 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
)

// Config configures a Transport. Zero fields take the documented default.
type Config struct {
	// ID is this node's ID: non-zero, unique in the cluster. Required.
	ID uint64
	// ClusterID must be the same on every node of a cluster: a connection
	// from another cluster is refused and logged. Zero is a valid ID.
	ClusterID uint64

	// ListenAddr is the address to listen on, e.g. "127.0.0.1:7000" or
	// "127.0.0.1:0" for a free port (see Transport.Addr). Ignored if
	// Listener is set; one of the two is required.
	ListenAddr string
	// Listener, if set, is used instead of listening on ListenAddr. New
	// takes it over: the Transport closes it on Close, and a New that
	// fails closes it at once.
	Listener net.Listener

	// Peers maps the other nodes' IDs to their addresses. An entry for ID
	// itself is ignored, so every node may be given the same map. Of two
	// nodes, the one with the lower ID dials the other; both must list each
	// other for their connection to be made and accepted. The map is
	// copied; see AddPeer and RemovePeer for changes at run time.
	Peers map[uint64]string

	// TLS, if set, runs every connection over TLS with this configuration,
	// as server and as client alike. For mutual TLS it must hold the node's
	// certificate (Certificates), the CAs that sign peers' certificates
	// (RootCAs and ClientCAs) and ClientAuth: tls.RequireAndVerifyClientCert.
	// When ServerName is empty, the host part of the peer's address is used.
	// nil: plain TCP, unauthenticated and unencrypted.
	TLS *tls.Config

	// MaxFrameSize is the largest message, in bytes, sent or accepted.
	// Send refuses larger ones; a peer announcing a larger frame has its
	// connection closed before anything is allocated (logged as an
	// error), so give every node the same value. Default 16 MiB.
	MaxFrameSize int
	// QueueLen and QueueBytes bound each peer's send queue, in messages and
	// in payload bytes. A Send beyond either is dropped with ErrQueueFull.
	// QueueBytes must be at least MaxFrameSize. Defaults 8192 messages and
	// 64 MiB.
	QueueLen   int
	QueueBytes int
	// ReadBufferSize and WriteBufferSize size each connection's buffers.
	// Larger buffers coalesce more small messages per system call.
	// Default 256 KiB each.
	ReadBufferSize  int
	WriteBufferSize int

	// DialTimeout bounds one dial, HandshakeTimeout the TLS and replog
	// handshakes of one connection, WriteTimeout one burst of writes (a
	// peer that stops reading for that long loses its connection).
	// Defaults 5s, 5s, 10s.
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	WriteTimeout     time.Duration

	// MinBackoff and MaxBackoff bound the wait between two attempts to
	// reach a peer: it doubles from MinBackoff up to MaxBackoff, and each
	// wait is drawn between half and all of it. Defaults 50ms and 5s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Rand is the source of the backoff jitter. Default: a PCG seeded from
	// ID and the start time. Used under the Transport's lock.
	Rand rand.Source

	// Logger receives connection events: refused handshakes, bad frames,
	// reconnects. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	set := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setD := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	set(&c.MaxFrameSize, DefaultMaxFrameSize)
	set(&c.QueueLen, DefaultQueueLen)
	set(&c.QueueBytes, DefaultQueueBytes)
	set(&c.ReadBufferSize, DefaultBufferSize)
	set(&c.WriteBufferSize, DefaultBufferSize)
	setD(&c.DialTimeout, DefaultDialTimeout)
	setD(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setD(&c.WriteTimeout, DefaultWriteTimeout)
	setD(&c.MinBackoff, DefaultMinBackoff)
	setD(&c.MaxBackoff, DefaultMaxBackoff)
	if c.Rand == nil {
		c.Rand = rand.NewPCG(c.ID, uint64(time.Now().UnixNano()))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks a Config with its defaults filled in.
func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.ID == 0:
		return bad("ID must be non-zero")
	case c.Listener == nil && c.ListenAddr == "":
		return bad("ListenAddr or Listener is required")
	case c.MaxFrameSize < 0 || c.MaxFrameSize > 1<<31-1:
		return bad("MaxFrameSize %d out of range [1, 2^31)", c.MaxFrameSize)
	case c.QueueLen < 0 || c.QueueBytes < 0:
		return bad("QueueLen and QueueBytes must be positive")
	case c.QueueBytes < c.MaxFrameSize:
		return bad("QueueBytes %d is below MaxFrameSize %d", c.QueueBytes, c.MaxFrameSize)
	case c.ReadBufferSize < frameHeaderSize || c.WriteBufferSize < frameHeaderSize:
		return bad("buffer sizes must be at least %d", frameHeaderSize)
	case c.DialTimeout < 0 || c.HandshakeTimeout < 0 || c.WriteTimeout < 0:
		return bad("timeouts must be positive")
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return bad("need 0 < MinBackoff <= MaxBackoff")
	}
	for id, addr := range c.Peers {
		if id == 0 || addr == "" {
			return bad("peer %d has address %q", id, addr)
		}
	}
	return nil
}
