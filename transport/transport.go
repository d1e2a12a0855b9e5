package transport

// Handler receives one inbound message. from is the sending node's ID.
//
// The handler owns msg after the call: the transport never touches it again,
// so the handler may keep it, hand it to another goroutine or reuse it.
// A Handler is called from the transport's own goroutines; messages from one
// sender arrive in the order that sender sent them, one call at a time per
// sender. A Handler must not block for long: it should hand the message to a
// queue of its own and return.
type Handler func(from uint64, msg []byte)

// Transport carries opaque messages between the nodes of one cluster. The host
// application supplies it; replog multiplexes all of its traffic (raft,
// replication, forwarding, queries) over it with a type tag of its own.
//
// The contract:
//   - Start is called once, before any Send. From then on h receives every
//     inbound message until Close.
//   - Send queues msg for node to and returns without waiting for the
//     network. It never blocks on a slow or dead peer. Under pressure (queue
//     full, peer unreachable) it may drop the message or return an error
//     (this package's transports return ErrQueueFull for a full queue);
//     replog retries what it needs delivered.
//   - Messages that Send delivers between two nodes arrive in the order they
//     were sent. A dropped message may leave a gap; nothing is duplicated.
//   - The transport owns msg once Send is called, whatever Send returns: the
//     caller must not modify or reuse it.
//   - Close stops delivery, releases every goroutine and connection, and
//     returns once no Handler call is running or will start.
type Transport interface {
	// Start installs h and begins delivery. It is called once, before Send.
	Start(h Handler) error
	// Send queues msg for the node to and returns at once.
	Send(to uint64, msg []byte) error
	// Close stops the transport; later Sends return an error.
	Close() error
}

// MessageLimiter is implemented by a Transport that carries messages up
// to a size (transport/tcp: Config.MaxFrameSize). replog.Open refuses a
// configuration whose largest message (a batch of MaxBatchBytes, a
// replication round) it could not carry: such a batch would be written
// on its leader and never reach a follower.
type MessageLimiter interface {
	// MaxMessageSize is the largest msg Send delivers, in bytes.
	MaxMessageSize() int
}
