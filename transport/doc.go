// Package transport defines the contract between replog and the network the
// host application provides: a Transport carries opaque, ordered messages
// between nodes and may drop them under pressure; replog multiplexes all of
// its traffic over one Transport per node and retries what it needs.
//
// # The contract
//
// See Transport and Handler. In short:
//
//   - Start once, then Send; Send queues and returns, never waiting for the
//     network. Under pressure it drops (returning nil or ErrQueueFull).
//   - Messages between two nodes that are delivered arrive in the order
//     sent, without duplicates; a dropped message leaves a gap.
//   - The transport owns a message from Send on; the Handler owns it from
//     delivery on. Neither side touches a buffer it handed over.
//   - A Handler is called from the transport's goroutines, one call at a
//     time per sender, and must return quickly.
//   - Close returns once no Handler call runs or will start.
//
// # Implementations
//
// MemNetwork is an in-process network for LocalCluster and tests. It
// injects faults deterministically for a seed: Isolate, Partition, SetLink
// (drop rate and delay per directed link), Heal. Every directed link has a
// bounded queue (MemQueueLen messages, MemQueueBytes bytes) and a delivery
// goroutine that drains it in bursts:
//
//	Send(1→2) ──► [link 1→2: bounded FIFO] ──► goroutine ──► node 2's Handler
//	Send(3→2) ──► [link 3→2: bounded FIFO] ──► goroutine ──► node 2's Handler
//	               │
//	               └ at Send: queue full? cut? drop (per-link rand)? delay?
//	                 at delivery: cut? receiver open and started?
//
// Package transport/tcp carries messages over persistent TCP connections
// with checksummed frames, a handshake and optional mutual TLS.
//
// # Caller's duties
//
// Send nothing you will touch again. Do not block in a Handler: hand the
// message to a queue of your own. Do not Close an endpoint from inside its
// own Handler. Create, use and close a MemNetwork inside one
// testing/synctest bubble if its delays are to run on the fake clock.
package transport
