package tcp

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replog/replog/transport"
)

func TestOrderedAndComplete(t *testing.T) {
	nodes := cluster(t, 3, nil)
	const n = 3000
	var wg sync.WaitGroup
	for from := 1; from <= 3; from++ {
		wg.Go(func() {
			for seq := range uint64(n) {
				for to := 1; to <= 3; to++ {
					if to != from {
						mustSend(t, nodes[from], uint64(to), seq)
					}
				}
			}
		})
	}
	wg.Wait()
	ctx := ctxT(t)
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i)
	}
	for to := 1; to <= 3; to++ {
		for from := 1; from <= 3; from++ {
			if from == to {
				continue
			}
			if err := nodes[to].rec.WaitFor(ctx, uint64(from), n-1); err != nil {
				t.Fatal(err)
			}
			if got := nodes[to].rec.Seqs(uint64(from)); !slices.Equal(got, want) {
				t.Fatalf("%d->%d: %d messages, not 0..%d in order", from, to, len(got), n-1)
			}
		}
	}
	for id := 1; id <= 3; id++ {
		st := nodes[id].Stats()
		// One connection per pair: each node took part in exactly two.
		// Sent may lag: the writer counts a burst once its write returns.
		if st.Connects != 2 || st.Sent > 2*n || st.Received != 2*n || st.DroppedLost+st.DroppedFull != 0 {
			t.Fatalf("node %d stats %+v", id, st)
		}
	}
}

func TestSendErrors(t *testing.T) {
	ln := listen(t)
	tr, err := New(testConfig(1, ln, map[uint64]string{1: "self", 2: "127.0.0.1:1"}, newLogSink()))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Send(2, []byte("x")); !errors.Is(err, transport.ErrNotStarted) {
		t.Fatalf("Send before Start: %v", err)
	}
	if err := tr.Start(nil); !errors.Is(err, transport.ErrNilHandler) {
		t.Fatalf("Start(nil): %v", err)
	}
	if err := tr.Start(func(uint64, []byte) {}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(func(uint64, []byte) {}); !errors.Is(err, transport.ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := tr.Send(1, []byte("x")); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send to self: %v", err)
	}
	if err := tr.Send(3, []byte("x")); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send to unknown: %v", err)
	}
	if err := tr.Send(2, make([]byte, tr.MaxMessageSize()+1)); !errors.Is(err, ErrMessageTooLarge) || tr.MaxMessageSize() != DefaultMaxFrameSize {
		t.Fatalf("Send past MaxMessageSize %d: %v", tr.MaxMessageSize(), err)
	}
	if err := tr.AddPeer(2, "127.0.0.1:2"); !errors.Is(err, ErrPeerExists) {
		t.Fatalf("AddPeer twice: %v", err)
	}
	if err := tr.RemovePeer(2); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemovePeer(2); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("RemovePeer twice: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Send(2, []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"zero ID", func(c *Config) { c.ID = 0 }},
		{"no address", func(c *Config) { c.Listener = nil }},
		{"negative frame size", func(c *Config) { c.MaxFrameSize = -1 }},
		{"queue below frame", func(c *Config) { c.QueueBytes = 10; c.MaxFrameSize = 100 }},
		{"tiny buffer", func(c *Config) { c.ReadBufferSize = 4 }},
		{"backoff order", func(c *Config) { c.MinBackoff = time.Second; c.MaxBackoff = time.Millisecond }},
		{"empty peer address", func(c *Config) { c.Peers = map[uint64]string{2: ""} }},
		{"peer zero", func(c *Config) { c.Peers = map[uint64]string{0: "x:1"} }},
	} {
		ln := listen(t)
		cfg := Config{ID: 1, Listener: ln}
		tc.mod(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", tc.name, err)
		}
		// A New that fails has closed the Listener it was given.
		if cfg.Listener != nil {
			// A deadline, so that an open Listener fails the check rather
			// than block it.
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
			if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: Accept on the Listener after New failed = %v, want net.ErrClosed", tc.name, err)
			}
		}
		_ = ln.Close()
	}
	c := Config{ID: 1, ListenAddr: "x"}.withDefaults()
	if c.MaxFrameSize != DefaultMaxFrameSize || c.QueueLen != DefaultQueueLen || c.MaxBackoff != DefaultMaxBackoff || c.Logger == nil || c.Rand == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 10*time.Millisecond, 100*time.Millisecond
	for _, tc := range []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{0, 0, 5 * time.Millisecond},
		{0, 0.999999, 10 * time.Millisecond},
		{1, 0, 10 * time.Millisecond},
		{3, 0.5, 60 * time.Millisecond},
		{4, 0, 50 * time.Millisecond}, // capped at hi
		{1000, 0.5, 75 * time.Millisecond},
	} {
		got := backoff(tc.attempt, lo, hi, tc.jitter)
		if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("backoff(%d, jitter %v) = %v, want %v", tc.attempt, tc.jitter, got, tc.want)
		}
	}
}

// restart closes n and starts a new node with the same ID on the same
// address.
func restart(t *testing.T, n *node, peers map[uint64]string) *node {
	t.Helper()
	addr := n.Addr().String()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, testConfig(n.ID(), ln, peers, newLogSink()))
}

func TestPeerRestart(t *testing.T) {
	nodes := cluster(t, 2, nil)
	peers := map[uint64]string{1: nodes[1].Addr().String(), 2: nodes[2].Addr().String()}
	ctx := ctxT(t)
	exchange := func(a, b *node, seq uint64) {
		t.Helper()
		mustSend(t, a, b.ID(), seq)
		if err := b.rec.WaitFor(ctx, a.ID(), seq); err != nil {
			t.Fatal(err)
		}
		mustSend(t, b, a.ID(), seq)
		if err := a.rec.WaitFor(ctx, b.ID(), seq); err != nil {
			t.Fatal(err)
		}
	}
	exchange(nodes[1], nodes[2], 1)

	// The dialling side restarts: the acceptor takes its new connection.
	n1 := restart(t, nodes[1], peers)
	exchange(n1, nodes[2], 2)

	// The accepting side restarts: the dialler reconnects with backoff.
	n2 := restart(t, nodes[2], peers)
	exchange(n2, n1, 3)
	if got := n1.rec.Seqs(2); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("restarted node 1 got %v from 2", got)
	}
	if st := n1.Stats(); st.Connects != 2 {
		t.Fatalf("node 1 connected %d times, want 2", st.Connects)
	}
}

func TestGarbageBeforeHandshake(t *testing.T) {
	nodes := cluster(t, 2, nil)
	c, err := net.Dial("tcp", nodes[2].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	garbage := make([]byte, 100)
	for i := range garbage {
		garbage[i] = byte(i * 37)
	}
	if _, err := c.Write(garbage); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	if err := nodes[2].log.waitFor(ctxT(t), "refused", "bad magic"); err != nil {
		t.Fatal(err)
	}
	if st := nodes[2].Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The real peer is unaffected.
	mustSend(t, nodes[1], 2, 9)
	if err := nodes[2].rec.WaitFor(ctxT(t), 1, 9); err != nil {
		t.Fatal(err)
	}
}

func TestBadFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header func(h []byte)
		log    string
	}{
		{"checksum", func(h []byte) { binary.BigEndian.PutUint32(h, 8); binary.BigEndian.PutUint64(h[4:], 12345) }, "checksum"},
		{"oversize", func(h []byte) { binary.BigEndian.PutUint32(h, 1<<20+1) }, "larger than MaxFrameSize"},
		{"huge", func(h []byte) { binary.BigEndian.PutUint32(h, 1<<32-1) }, "larger than MaxFrameSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			cfg := testConfig(2, ln, map[uint64]string{1: "127.0.0.1:1"}, newLogSink())
			cfg.MaxFrameSize = 1 << 20
			n := startNode(t, cfg)
			c := fakePeer(t, n.Addr().String(), 7, 1, 2)
			frame := make([]byte, frameHeaderSize+8)
			tc.header(frame)
			if _, err := c.Write(frame); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, c)
			if err := n.log.waitFor(ctxT(t), "ERROR", "bad frame", tc.log); err != nil {
				t.Fatal(err)
			}
			if st := n.Stats(); st.BadFrames != 1 || st.Received != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster uint64 // of the dialler, node 3
		known   bool   // node 5 lists node 3
		log     string
	}{
		{"wrong cluster", 8, true, "wrong cluster ID"},
		{"unknown node", 7, false, "unknown node ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lnA, lnD := listen(t), listen(t)
			var aPeers map[uint64]string
			if tc.known {
				aPeers = map[uint64]string{3: lnD.Addr().String()}
			}
			acceptor := startNode(t, testConfig(5, lnA, aPeers, newLogSink()))
			dcfg := testConfig(3, lnD, map[uint64]string{5: lnA.Addr().String()}, newLogSink())
			dcfg.ClusterID = tc.cluster
			dialler := startNode(t, dcfg)
			mustSend(t, dialler, 5, 1)
			ctx := ctxT(t)
			if err := acceptor.log.waitFor(ctx, "refused", tc.log); err != nil {
				t.Fatal(err)
			}
			if err := dialler.log.waitFor(ctx, "handshake with peer failed", tc.log); err != nil {
				t.Fatal(err)
			}
			if a, d := acceptor.Stats(), dialler.Stats(); a.Connects != 0 || d.Connects != 0 || a.Received != 0 {
				t.Fatalf("refused connection was used: acceptor %+v, dialler %+v", a, d)
			}
		})
	}
}

// TestPeerNeverReads: a peer that completes the handshake and then reads
// nothing fills the sender's queue, which stays bounded; Send never blocks,
// the write timeout drops the stuck connection, and Close still returns.
func TestPeerNeverReads(t *testing.T) {
	fake := listen(t)
	conns := make(chan net.Conn, 100) // the accepted connections, never read
	var wg sync.WaitGroup
	defer func() {
		fake.Close()
		wg.Wait()
		close(conns)
		for c := range conns {
			c.Close()
		}
	}()
	wg.Go(func() {
		for range cap(conns) {
			c, err := fake.Accept()
			if err != nil {
				return
			}
			conns <- c
			h, err := readHello(c)
			if err != nil {
				return // the transport gave up on this connection
			}
			_, _ = c.Write(hello{version: protocolVersion, cluster: h.cluster, from: 2, to: 1}.encode())
		}
	})
	ln := listen(t)
	cfg := testConfig(1, ln, map[uint64]string{2: fake.Addr().String()}, newLogSink())
	cfg.QueueLen, cfg.QueueBytes, cfg.MaxFrameSize = 64, 4<<20, 1<<20
	cfg.WriteTimeout = 300 * time.Millisecond
	n := startNode(t, cfg)
	msg := make([]byte, 64<<10)
	full := 0
	for i := 0; i < 5000 && full < 100; i++ {
		if err := n.Send(2, msg); errors.Is(err, transport.ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if full < 100 {
		t.Fatalf("only %d Sends refused: the queue is not bounded", full)
	}
	ctx := ctxT(t)
	if err := n.log.waitFor(ctx, "connection lost", "timeout"); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.DroppedFull < 100 || st.DroppedLost == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAddRemovePeer(t *testing.T) {
	ln1, ln2 := listen(t), listen(t)
	n1 := startNode(t, testConfig(1, ln1, nil, newLogSink()))
	n2 := startNode(t, testConfig(2, ln2, nil, newLogSink()))
	if err := n2.Send(1, seqMsg(1, 8)); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send before AddPeer: %v", err)
	}
	if err := n2.AddPeer(1, ln1.Addr().String()); err != nil {
		t.Fatal(err)
	}
	mustSend(t, n2, 1, 1) // queued until node 1 knows node 2 and dials it
	if err := n1.AddPeer(2, ln2.Addr().String()); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := n1.rec.WaitFor(ctx, 2, 1); err != nil {
		t.Fatal(err)
	}
	if err := n1.RemovePeer(2); err != nil {
		t.Fatal(err)
	}
	if err := n1.Send(2, seqMsg(2, 8)); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Send after RemovePeer: %v", err)
	}
	// Node 2 lost its connection; node 1 refuses it until added again.
	if err := n1.AddPeer(2, ln2.Addr().String()); err != nil {
		t.Fatal(err)
	}
	mustSend(t, n1, 2, 3)
	if err := n2.rec.WaitFor(ctx, 1, 3); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWaitsForHandler: Close returns only after a running Handler
// call has returned.
func TestCloseWaitsForHandler(t *testing.T) {
	ln1, ln2 := listen(t), listen(t)
	peers := map[uint64]string{1: ln1.Addr().String(), 2: ln2.Addr().String()}
	n1 := startNode(t, testConfig(1, ln1, peers, newLogSink()))
	t2, err := New(testConfig(2, ln2, peers, newLogSink()))
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	if err := t2.Start(func(uint64, []byte) {
		close(entered)
		<-release
		returned.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	mustSend(t, n1, 2, 1)
	select {
	case <-entered:
	case <-ctxT(t).Done():
		t.Fatal("message not delivered")
	}
	closed := make(chan error)
	go func() { closed <- t2.Close() }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("Close returned while the Handler was running")
	}
}

// TestPeerChurnUnderTraffic removes and re-adds a peer while both sides
// send: what arrives is in order and without duplicates, and the link
// works at the end.
// sendAfterFlood sends seq from one node to another whose queue a flood
// may have left full: on ErrQueueFull (back-pressure, which asks the
// caller to send later) it waits until the receiver has taken another
// message of the queue, then sends again.
func sendAfterFlood(t *testing.T, ctx context.Context, from, to *node, seq uint64) {
	t.Helper()
	for range 100_000 { // at most a queue's worth of waits
		n := len(to.rec.Seqs(from.ID()))
		err := from.Send(to.ID(), seqMsg(seq, 8))
		if !errors.Is(err, transport.ErrQueueFull) {
			if err != nil {
				t.Fatalf("send %d from %d to %d: %v", seq, from.ID(), to.ID(), err)
			}
			return
		}
		if err := to.rec.WaitCount(ctx, from.ID(), n+1); err != nil {
			t.Fatalf("send %d from %d to %d: queue full, and: %v", seq, from.ID(), to.ID(), err)
		}
	}
	t.Fatalf("send %d from %d to %d: the queue stayed full", seq, from.ID(), to.ID())
}

func TestPeerChurnUnderTraffic(t *testing.T) {
	nodes := cluster(t, 2, nil)
	addr2 := nodes[2].Addr().String()
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for _, p := range [][2]int{{1, 2}, {2, 1}} {
		senders.Go(func() {
			for seq := range uint64(1_000_000) {
				select {
				case <-stop:
					return
				default:
				}
				err := nodes[p[0]].Send(uint64(p[1]), seqMsg(seq, 8))
				if err != nil && !errors.Is(err, transport.ErrQueueFull) && !errors.Is(err, transport.ErrUnknownPeer) {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 10 {
		if err := nodes[1].RemovePeer(2); err != nil {
			t.Fatal(err)
		}
		if err := nodes[1].AddPeer(2, addr2); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	senders.Wait()
	ctx := ctxT(t)
	// 1->2 first: node 1's re-added peer only ever used the new connection,
	// and once node 2 has read from it, node 2 writes to it too (not to the
	// old one, where a message could be lost).
	for _, p := range [][2]int{{1, 2}, {2, 1}} {
		from, to := nodes[p[0]], nodes[p[1]]
		sendAfterFlood(t, ctx, from, to, 1<<62)
		if err := to.rec.WaitFor(ctx, from.ID(), 1<<62); err != nil {
			t.Fatal(err)
		}
		got := to.rec.Seqs(from.ID())
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%d->%d: %d after %d", from.ID(), to.ID(), got[i], got[i-1])
			}
		}
	}
}

// A flood of connections that never say hello holds at most
// maxHandshakes handshakes: a connection past them is closed at once,
// not after HandshakeTimeout, and counted as refused; a real peer still
// connects once the flood is gone.
func TestHandshakeFloodBounded(t *testing.T) {
	nodes := cluster(t, 2, func(c *Config) { c.HandshakeTimeout = time.Minute })
	addr := nodes[1].Addr().String()
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range maxHandshakes {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	before := nodes[1].Stats().Refused
	extra, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetDeadline(time.Now().Add(10 * time.Second)) // far below HandshakeTimeout
	waitClosed(t, extra)
	if got := nodes[1].Stats().Refused; got <= before {
		t.Fatalf("refused %d connections, %d before the one past the limit", got, before)
	}
	for _, c := range silent {
		c.Close()
	}
	silent = nil
	mustSend(t, nodes[2], 1, 1)
	if err := nodes[1].rec.WaitFor(ctxT(t), 2, 1); err != nil {
		t.Fatalf("node 2's message after the flood: %v", err)
	}
}
