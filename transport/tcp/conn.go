package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxHandshakes bounds the inbound handshakes running at once. A peer
// dials one connection at a time, so a cluster's own need stays far below
// it; a refused peer dials again after its backoff.
const maxHandshakes = 64

// acceptLoop accepts inbound connections until Close, handing each to a
// handshake goroutine (at most maxHandshakes at once). Owned by the
// Transport.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	attempt := 0
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then retry.
			d := backoff(attempt, t.cfg.MinBackoff, t.cfg.MaxBackoff, t.jitter())
			t.cfg.Logger.Error("tcp: accept failed", "err", err, "retry_in", d)
			attempt++
			if !sleepCtx(t.ctx, d) {
				return
			}
			continue
		}
		attempt = 0
		select {
		case t.handshakes <- struct{}{}:
		default:
			t.stats.refused.Add(1)
			t.cfg.Logger.Debug("tcp: inbound connection refused: too many handshakes running", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		t.wg.Add(1)
		go t.acceptConn(c)
	}
}

// acceptConn runs the acceptor's side of the handshake on c and, if the
// dialler is a known peer of this cluster, hands c to that peer.
func (t *Transport) acceptConn(c net.Conn) {
	defer t.wg.Done()
	log := t.cfg.Logger.With("remote", c.RemoteAddr().String())
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	conn, h, err := t.handshakeIn(ctx, c)
	<-t.handshakes
	if !stop() || err != nil {
		if err == nil {
			err = ctx.Err()
		}
		if t.ctx.Err() == nil {
			t.stats.refused.Add(1)
			log.Warn("tcp: inbound connection refused", "err", err)
		}
		c.Close()
		return
	}
	p := t.peer(h.from)
	if p == nil { // removed during the handshake
		conn.Close()
		return
	}
	select {
	case p.incoming <- conn:
	case <-p.ctx.Done():
		conn.Close()
	}
}

// handshakeIn runs TLS (if configured) and reads the dialler's hello,
// answering it. It returns the connection to use and the accepted hello.
// The caller closes c on error, and on ctx's end.
func (t *Transport) handshakeIn(ctx context.Context, c net.Conn) (net.Conn, hello, error) {
	setNoDelay(c)
	conn := c
	if t.cfg.TLS != nil {
		tc := tls.Server(c, t.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, hello{}, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
		}
		conn = tc
	}
	h, err := readHello(conn)
	if err != nil {
		return nil, hello{}, err
	}
	status := checkDialler(h, t.cfg.ID, t.cfg.ClusterID, func(id uint64) bool { return t.peer(id) != nil })
	reply := hello{version: protocolVersion, status: status, cluster: t.cfg.ClusterID, from: t.cfg.ID, to: h.from}
	if _, err := conn.Write(reply.encode()); err != nil {
		return nil, hello{}, fmt.Errorf("%w: answering node %d: %w", ErrHandshake, h.from, err)
	}
	if status != statusOK {
		return nil, hello{}, fmt.Errorf("%w: node %d in cluster %d: %s", ErrHandshake, h.from, h.cluster, statusText(status))
	}
	return conn, h, nil
}

// dial connects to peer p and runs the dialler's side of the handshake.
func (t *Transport) dial(ctx context.Context, p *peer) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout+t.cfg.HandshakeTimeout)
	defer cancel()
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	conn, err := t.handshakeOut(ctx, c, p)
	if !stop() || err != nil {
		c.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return conn, nil
}

func (t *Transport) handshakeOut(ctx context.Context, c net.Conn, p *peer) (net.Conn, error) {
	setNoDelay(c)
	conn := c
	if t.cfg.TLS != nil {
		cfg := t.cfg.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(p.addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
		}
		conn = tc
	}
	h := hello{version: protocolVersion, cluster: t.cfg.ClusterID, from: t.cfg.ID, to: p.id}
	if _, err := conn.Write(h.encode()); err != nil {
		return nil, fmt.Errorf("%w: sending hello: %w", ErrHandshake, err)
	}
	reply, err := readHello(conn)
	if err != nil {
		return nil, err
	}
	if err := checkAcceptor(reply, t.cfg.ID, p.id, t.cfg.ClusterID); err != nil {
		return nil, err
	}
	return conn, nil
}

func setNoDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // Go's default already; only fails on a closed conn
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// closeConn closes conn at once. A TLS connection is closed without its
// close_notify alert, whose write waits up to 5 s for a peer that does not
// read: the connection is given up anyway, and frames carry their
// lengths, so the peer tells a cut stream from a whole one.
func closeConn(conn net.Conn) error {
	if tc, ok := conn.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return conn.Close()
}
