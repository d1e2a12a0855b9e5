package tcp

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replog/replog/transport"
)

// peer is one remote node: its bounded send queue and the goroutines that
// keep a connection to it. run (the connector and writer) and read (the
// reader of the current connection) are owned by the Transport; they exit
// when the peer's ctx ends (RemovePeer or Close).
type peer struct {
	t      *Transport
	id     uint64
	addr   string
	dialer bool // this node dials the peer; otherwise it waits for it

	ctx      context.Context
	cancel   context.CancelFunc
	running  atomic.Bool   // run was started (under t.mu, while in t.peers)
	done     chan struct{} // closed when run has exited (after read)
	notify   chan struct{} // capacity 1: the queue went from empty to not
	incoming chan net.Conn // handshaken connections from the peer (acceptor side)

	mu struct {
		sync.Mutex
		q     [][]byte // waiting messages, oldest first
		spare [][]byte // the other buffer, swapped with q per burst
		bytes int      // payload bytes in q
	}
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	p := &peer{
		t: t, id: id, addr: addr, dialer: dials(t.cfg.ID, id),
		done:     make(chan struct{}),
		notify:   make(chan struct{}, 1),
		incoming: make(chan net.Conn),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

// start launches the peer's goroutine. Called once, under t.mu.
func (p *peer) start() {
	p.running.Store(true)
	p.t.wg.Add(1)
	go p.run()
}

// stop ends the peer's goroutines, waits for them and drops its queue.
func (p *peer) stop() {
	p.cancel()
	if p.running.Load() { // no start can follow: p has left t.peers
		<-p.done
	}
	p.dropQueue()
}

func (p *peer) enqueue(msg []byte) error {
	p.mu.Lock()
	if len(p.mu.q) >= p.t.cfg.QueueLen || p.mu.bytes+len(msg) > p.t.cfg.QueueBytes {
		p.mu.Unlock()
		p.t.stats.droppedFull.Add(1)
		return transport.ErrQueueFull
	}
	p.mu.q = append(p.mu.q, msg)
	p.mu.bytes += len(msg)
	wake := len(p.mu.q) == 1
	p.mu.Unlock()
	if wake {
		select {
		case p.notify <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	return nil
}

// take swaps the queue out for the writer.
func (p *peer) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.mu.q
	p.mu.q, p.mu.spare = p.mu.spare[:0], nil
	p.mu.bytes = 0
	return batch
}

// give hands a written batch back for reuse.
func (p *peer) give(batch [][]byte) {
	clear(batch)
	p.mu.Lock()
	p.mu.spare = batch[:0]
	p.mu.Unlock()
}

func (p *peer) dropQueue() {
	batch := p.take()
	p.t.stats.droppedLost.Add(uint64(len(batch)))
	p.give(batch)
}

// run keeps a connection to the peer until ctx ends: it dials with backoff
// (or waits for the peer's connection) and serves each connection in turn.
func (p *peer) run() {
	defer p.t.wg.Done()
	defer close(p.done)
	log := p.t.cfg.Logger.With("peer", p.id, "addr", p.addr)
	fw := newFrameWriter(p.t.cfg.WriteBufferSize)
	attempt := 0
	var next net.Conn
	for p.ctx.Err() == nil {
		conn := next
		next = nil
		if conn == nil && p.dialer {
			c, err := p.t.dial(p.ctx, p)
			if err != nil {
				if p.ctx.Err() != nil {
					return
				}
				d := backoff(attempt, p.t.cfg.MinBackoff, p.t.cfg.MaxBackoff, p.t.jitter())
				attempt++
				if errors.Is(err, ErrHandshake) {
					p.t.stats.refused.Add(1)
					log.Warn("tcp: handshake with peer failed", "err", err, "retry_in", d)
				} else {
					log.Debug("tcp: dial failed", "err", err, "retry_in", d)
				}
				if !sleepCtx(p.ctx, d) {
					return
				}
				continue
			}
			conn, attempt = c, 0
		}
		if conn == nil {
			select {
			case conn = <-p.incoming:
			case <-p.ctx.Done():
				return
			}
		}
		p.t.stats.connects.Add(1)
		log.Info("tcp: connected", "remote", conn.RemoteAddr().String())
		var err error
		next, err = p.serve(conn, fw)
		if p.ctx.Err() != nil {
			if next != nil {
				next.Close()
			}
			return
		}
		log.Info("tcp: connection lost", "err", err)
		if next == nil && p.dialer && !sleepCtx(p.ctx, backoff(0, p.t.cfg.MinBackoff, p.t.cfg.MaxBackoff, p.t.jitter())) {
			return
		}
	}
}

// serve writes the queue to conn, in one buffered write per burst, while a
// reader goroutine delivers what arrives on it. It returns when conn fails,
// when ctx ends, or when the peer dials again (acceptor side), with that
// new connection; conn is closed and its reader gone when serve returns.
func (p *peer) serve(conn net.Conn, fw *frameWriter) (next net.Conn, err error) {
	readErr := make(chan error, 1)
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		readErr <- p.read(conn)
	}()
	stop := context.AfterFunc(p.ctx, func() { closeConn(conn) })
	defer stop()
	shut := func() {
		closeConn(conn)
		if e := <-readErr; err == nil {
			err = e
		}
	}
	fw.reset(conn)
	fw.beforeWrite = func() error { return conn.SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout)) }
	defer func() { fw.reset(nil); fw.beforeWrite = nil }()
	for {
		select {
		case <-p.notify:
		case err = <-readErr:
			closeConn(conn)
			return nil, err
		case next = <-p.incoming:
			shut()
			return next, err
		case <-p.ctx.Done():
			shut()
			return nil, p.ctx.Err()
		}
		batch := p.take()
		err = p.write(fw, batch)
		n := uint64(len(batch))
		p.give(batch)
		if err != nil {
			p.t.stats.droppedLost.Add(n)
			shut()
			return nil, err
		}
		p.t.stats.sent.Add(n)
	}
}

// write sends batch as frames in as few writes as the buffer allows.
func (p *peer) write(fw *frameWriter, batch [][]byte) error {
	for _, m := range batch {
		if err := fw.add(m); err != nil {
			return err
		}
	}
	return fw.flush()
}

// read delivers conn's frames to the Handler until conn fails.
func (p *peer) read(conn net.Conn) error {
	fr := newFrameReader(conn, p.t.cfg.ReadBufferSize)
	h := p.t.handler
	for {
		msg, err := fr.next(p.t.cfg.MaxFrameSize)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrChecksum) {
				p.t.stats.badFrames.Add(1)
				p.t.cfg.Logger.Error("tcp: bad frame, closing connection", "peer", p.id, "err", err)
			}
			return err
		}
		p.t.stats.received.Add(1)
		h(p.id, msg)
	}
}
