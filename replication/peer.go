package replication

import (
	"sync"

	"github.com/replog/replog/internal/mux"
)

// maxMessageBytes is the size past which a peer seals the message it is
// filling and starts another; a single item may still exceed it.
const maxMessageBytes = 1 << 20

// outbox collects the items of one tag for one peer into messages.
type outbox struct {
	ready [][]byte // sealed messages, oldest first
	cur   []byte   // the message being filled: tag room, version, items
}

// begin returns the message to append an item of about n bytes to.
func (o *outbox) begin(n int) []byte {
	if o.cur != nil && len(o.cur)+n > maxMessageBytes {
		o.ready = append(o.ready, o.cur)
		o.cur = nil
	}
	if o.cur == nil {
		o.cur = append(mux.Frame(max(n+16, 512)), wireVersion)
	}
	return o.cur
}

func (o *outbox) take(dst [][]byte) [][]byte {
	dst = append(dst, o.ready...)
	clear(o.ready)
	o.ready = o.ready[:0]
	if o.cur != nil {
		dst = append(dst, o.cur)
		o.cur = nil
	}
	return dst
}

// peer sends this node's replication and forwarding items to one other
// node: callers append items under mu, and the peer's sender goroutine
// sends what accumulated as one message per tag and burst. Items for many
// partitions thus share a message. The sender goroutine is owned by the
// Manager: started by Manager.peer, it exits when the Manager's done channel
// closes.
type peer struct {
	id   uint64
	m    *Manager
	kick chan struct{} // capacity one: items are waiting
	mu   struct {
		sync.Mutex
		repl, fwd outbox
	}
}

func (p *peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *peer) run() {
	var repl, fwd [][]byte
	for {
		select {
		case <-p.kick:
		case <-p.m.done:
			return
		}
		p.mu.Lock()
		repl = p.mu.repl.take(repl[:0])
		fwd = p.mu.fwd.take(fwd[:0])
		p.mu.Unlock()
		for _, msg := range repl {
			// A failed send is a lost message: retransmission covers it.
			_ = p.m.cfg.Replication.Send(p.id, msg)
		}
		for _, msg := range fwd {
			_ = p.m.cfg.Forward.Send(p.id, msg)
		}
		clear(repl)
		clear(fwd)
	}
}

func (p *peer) push(it *pushItem) {
	p.mu.Lock()
	p.mu.repl.cur = appendPush(p.mu.repl.begin(len(it.batches)+48), it)
	p.mu.Unlock()
	p.wake()
}

func (p *peer) ack(it *ackItem) {
	p.mu.Lock()
	p.mu.repl.cur = appendAck(p.mu.repl.begin(48), it)
	p.mu.Unlock()
	p.wake()
}

func (p *peer) appendReq(it *appendItem) {
	p.mu.Lock()
	p.mu.fwd.cur = appendAppend(p.mu.fwd.begin(len(it.batch)+48), it)
	p.mu.Unlock()
	p.wake()
}

func (p *peer) appendResp(it *appendResp) {
	p.mu.Lock()
	p.mu.fwd.cur = appendAppendResp(p.mu.fwd.begin(48), it)
	p.mu.Unlock()
	p.wake()
}

func (p *peer) read(it *readItem) {
	p.mu.Lock()
	p.mu.fwd.cur = appendRead(p.mu.fwd.begin(64), it)
	p.mu.Unlock()
	p.wake()
}

func (p *peer) readResp(it *readResp) {
	p.mu.Lock()
	p.mu.fwd.cur = appendReadResp(p.mu.fwd.begin(len(it.batches)+48), it)
	p.mu.Unlock()
	p.wake()
}
