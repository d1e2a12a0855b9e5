package tcp

import "errors"

// Errors of this package. Send, Start and Close also return the shared
// sentinels of package transport: transport.ErrClosed,
// transport.ErrStarted, transport.ErrNotStarted, transport.ErrQueueFull,
// transport.ErrUnknownPeer and transport.ErrNilHandler.
var (
	// ErrInvalidConfig is returned by New for a Config that fails
	// validation; the wrapped message names the field.
	ErrInvalidConfig = errors.New("tcp: invalid config")

	// ErrMessageTooLarge is returned by Send for a message longer than
	// Config.MaxFrameSize; the message is dropped, never sent.
	ErrMessageTooLarge = errors.New("tcp: message larger than MaxFrameSize")

	// ErrPeerExists is returned by AddPeer for an ID that has a peer.
	ErrPeerExists = errors.New("tcp: peer already exists")

	// ErrFrameTooLarge: an inbound frame announced a length above
	// Config.MaxFrameSize. The connection is closed; nothing is allocated.
	ErrFrameTooLarge = errors.New("tcp: inbound frame larger than MaxFrameSize")

	// ErrChecksum: an inbound frame's payload does not match its checksum.
	// The connection is closed.
	ErrChecksum = errors.New("tcp: frame checksum mismatch")

	// ErrHandshake: a connection was refused during the handshake (bad
	// magic, other version, other cluster, unknown or unexpected node).
	ErrHandshake = errors.New("tcp: handshake refused")
)
