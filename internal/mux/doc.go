// Package mux shares one transport.Transport between replog's subsystems.
//
// Every message replog sends starts with a one-byte Tag naming the subsystem
// it is for (raft, metadata queries, replication, forwarding). A Mux installs
// itself as the transport's Handler, strips the tag of each inbound message
// and calls the handler registered for it; a Sender puts its tag in front of
// each outbound message. Messages with an unknown tag, or empty ones, are
// counted and dropped: a newer peer may speak a subsystem this node lacks.
//
//	+-----+---------------------------+
//	| tag |  subsystem's own payload  |
//	+-----+---------------------------+
//	  1 B
package mux
