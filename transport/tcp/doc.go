// Package tcp is a transport.Transport over TCP, for replog nodes in
// separate processes or machines.
//
// # Connections
//
// Every pair of nodes shares one persistent connection, used in both
// directions. The node with the lower ID dials it; the other accepts it,
// so both must list each other as peers (Config.Peers, AddPeer). A
// dialler whose connection breaks redials with capped exponential backoff
// and jitter; an acceptor takes the newest connection from a peer (a
// restarted peer dials again) and closes the older one.
//
//	node 1 ──dial──► node 2      (1 < 2: node 1 dials)
//	node 1 ──dial──► node 3
//	node 2 ──dial──► node 3
//
// Per peer, Send appends to a bounded queue (Config.QueueLen messages,
// Config.QueueBytes bytes) and returns; a full queue refuses the message
// with transport.ErrQueueFull. A writer goroutine takes the whole queue at
// each wake-up and writes it with as few system calls as it can: headers
// and small messages are copied into one buffer, large messages are passed
// by reference, and the lot goes out in one writev (up to 512 pieces or
// 4 MiB of large messages per call, each call under Config.WriteTimeout).
// TCP_NODELAY is on. A reader goroutine per connection decodes frames and
// calls the Handler, in order, one call at a time; it reads many small
// frames per system call and reads large payloads straight into the
// message's buffer, which is the only allocation per message.
//
// Messages queued while a peer is unreachable wait for the connection (up
// to the queue's bounds); a burst whose write fails is lost, never resent,
// so nothing is duplicated. Stats counts what was sent, received, refused
// and lost.
//
//	Send ──► [peer queue] ──► writer ──writev──► conn ──► reader ──► Handler
//	          bounded          one per peer              one per connection
//
// # Handshake
//
// Once TCP (and TLS, when Config.TLS is set) is up, the dialler sends a
// hello and the acceptor answers with its own, whose status accepts or
// refuses the connection. A hello is 32 bytes, integers big-endian:
//
//	0      4         6        8             16            24            32
//	+------+---------+--------+-------------+-------------+-------------+
//	| RPLG | version | status | cluster ID  |  from ID    |   to ID     |
//	+------+---------+--------+-------------+-------------+-------------+
//
// The acceptor refuses (and logs) a bad magic, another protocol version,
// another cluster ID, a dialler that is not one of its peers, a hello
// meant for another node, and a dialler with the higher ID. The dialler
// checks the answer the same way and logs a refusal with its reason. A
// handshake has Config.HandshakeTimeout; at most 64 inbound handshakes run
// at once, and a connection past them is closed at once (counted in
// Stats.Refused), so that connections which never say hello cannot pile
// up.
//
// # Frames
//
// After the handshake each message is one frame:
//
//	0          4                  12
//	+----------+------------------+---------------------+
//	|  length  | xxhash64(payload)|  payload (length B) |
//	+----------+------------------+---------------------+
//	  uint32        uint64
//
// A frame longer than Config.MaxFrameSize closes the connection with a
// logged error before anything is allocated for it; so does a checksum
// mismatch. Either way the peer reconnects and carries on.
//
// # Security
//
// Without Config.TLS, connections are neither encrypted nor authenticated:
// anyone who can reach the port and knows a node ID and the cluster ID can
// send messages. With Config.TLS set up for mutual TLS, both ends must
// present certificates signed by a trusted CA. The certificate is not tied
// to the node ID in the hello: any holder of a valid certificate may speak
// as any node of the cluster.
package tcp
