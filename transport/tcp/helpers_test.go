package tcp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/replog/replog/internal/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects the messages one node receives.
type recorder = transporttest.Recorder

func seqMsg(seq uint64, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(b, seq)
	return b
}

// logSink is a slog.Handler that keeps every record's text and lets tests
// wait for one.
type logSink struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
	attrs []slog.Attr
	root  *logSink
}

func newLogSink() *logSink {
	s := &logSink{cond: make(chan struct{})}
	s.root = s
	return s
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	return &logSink{root: s.root, attrs: append(slices.Clone(s.attrs), as...)}
}
func (s *logSink) WithGroup(string) slog.Handler { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range s.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	root := s.root
	root.mu.Lock()
	defer root.mu.Unlock()
	root.lines = append(root.lines, b.String())
	close(root.cond)
	root.cond = make(chan struct{})
	return nil
}

// waitFor waits until a logged line contains every one of subs.
func (s *logSink) waitFor(ctx context.Context, subs ...string) error {
	for {
		s.mu.Lock()
		found := slices.ContainsFunc(s.lines, func(l string) bool {
			for _, sub := range subs {
				if !strings.Contains(l, sub) {
					return false
				}
			}
			return true
		})
		c := s.cond
		s.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-c:
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			return fmt.Errorf("no log line with %q in %q: %w", subs, s.lines, ctx.Err())
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// testConfig is a Config for node id on ln with quick backoff.
func testConfig(id uint64, ln net.Listener, peers map[uint64]string, log *logSink) Config {
	return Config{
		ID: id, ClusterID: 7, Listener: ln, Peers: peers,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Rand:   rand.NewPCG(id, 1),
		Logger: slog.New(log),
	}
}

// node is a started Transport with a recorder and a log.
type node struct {
	*Transport
	rec *recorder
	log *logSink
}

func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Transport: tr, rec: transporttest.NewRecorder(), log: cfg.Logger.Handler().(*logSink)}
	if err := tr.Start(n.rec.Handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return n
}

// cluster starts nodes 1..n, all knowing each other.
func cluster(t *testing.T, n int, mod func(*Config)) []*node {
	t.Helper()
	lns := make([]net.Listener, n+1)
	peers := make(map[uint64]string)
	for id := 1; id <= n; id++ {
		lns[id] = listen(t)
		peers[uint64(id)] = lns[id].Addr().String()
	}
	nodes := make([]*node, n+1)
	for id := 1; id <= n; id++ {
		cfg := testConfig(uint64(id), lns[id], peers, newLogSink())
		if mod != nil {
			mod(&cfg)
		}
		nodes[id] = startNode(t, cfg)
	}
	return nodes
}

func mustSend(t *testing.T, n *node, to, seq uint64) {
	t.Helper()
	if err := n.Send(to, seqMsg(seq, 8)); err != nil {
		t.Fatalf("send %d from %d to %d: %v", seq, n.ID(), to, err)
	}
}

// fakePeer dials addr and completes the handshake as node from of cluster.
func fakePeer(t *testing.T, addr string, cluster, from, to uint64) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(hello{version: protocolVersion, cluster: cluster, from: from, to: to}.encode()); err != nil {
		t.Fatal(err)
	}
	reply, err := readHello(c)
	if err != nil {
		t.Fatal(err)
	}
	if reply.status != statusOK {
		t.Fatalf("fake peer refused: %s", statusText(reply.status))
	}
	return c
}

// waitClosed waits (bounded by c's deadline) until the other end closes c.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	var b [1024]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection not closed by the transport")
			}
			return
		}
	}
}
