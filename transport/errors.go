package transport

import "errors"

// Errors returned by this package's transports (MemNetwork's endpoints, and
// transport/tcp, which returns the same sentinels so that callers can test
// for them with errors.Is whatever transport the host chose).
var (
	// ErrClosed is returned by Send and Start after Close, and by Close
	// when called twice.
	ErrClosed = errors.New("transport: closed")

	// ErrStarted is returned by Start when it is called a second time.
	ErrStarted = errors.New("transport: already started")

	// ErrNotStarted is returned by Send before Start.
	ErrNotStarted = errors.New("transport: not started")

	// ErrQueueFull is returned by Send when the queue towards the
	// destination is full. The message has been dropped; the caller may
	// retry later. Send never blocks waiting for room.
	ErrQueueFull = errors.New("transport: send queue full")

	// ErrUnknownPeer is returned by Send for a destination the transport
	// has no address for (transport/tcp).
	ErrUnknownPeer = errors.New("transport: unknown peer")

	// ErrNilHandler is returned by Start when given a nil Handler.
	ErrNilHandler = errors.New("transport: nil handler")
)
