package meta

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeNet delivers every Send synchronously to the destination's handler
// (which only queues), unless the link is cut. It stands in for the
// transport in tests that need only cuts, not delays.
type fakeNet struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
	cut   map[[2]uint64]bool
	drop  float64    // probability of dropping a message
	rng   *rand.Rand // for drop, seeded
}

func newFakeNet() *fakeNet {
	return &fakeNet{nodes: map[uint64]*Node{}, cut: map[[2]uint64]bool{}}
}

type fakeSender struct {
	net  *fakeNet
	from uint64
	raft bool
}

func (s fakeSender) Send(to uint64, msg []byte) error {
	s.net.mu.Lock()
	n := s.net.nodes[to]
	cut := s.net.cut[[2]uint64{s.from, to}]
	if s.net.drop > 0 && s.net.rng.Float64() < s.net.drop {
		cut = true
	}
	s.net.mu.Unlock()
	if n == nil || cut {
		return nil // dropped
	}
	payload := append([]byte(nil), msg[1:]...)
	if s.raft {
		n.HandleRaft(s.from, payload)
	} else {
		n.HandleMeta(s.from, payload)
	}
	return nil
}

// partition cuts every link between groups.
func (f *fakeNet) partition(groups ...[]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					f.cut[[2]uint64{a, b}] = true
				}
			}
		}
	}
}

func (f *fakeNet) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
}

// cluster is a meta group under test.
type cluster struct {
	t     testing.TB
	net   *fakeNet
	peers []uint64
	dir   string // "" in memory
	nodes map[uint64]*Node
	cfg   func(*Config)
	mem   map[uint64]*MemStore // in memory: each node's log across restarts
}

func newCluster(t testing.TB, n int, onDisk bool) *cluster {
	t.Helper()
	c := &cluster{t: t, net: newFakeNet(), nodes: map[uint64]*Node{}}
	if onDisk {
		c.dir = t.TempDir()
	}
	for i := 1; i <= n; i++ {
		c.peers = append(c.peers, uint64(i))
	}
	for _, id := range c.peers {
		c.start(id)
	}
	t.Cleanup(c.close)
	return c
}

func (c *cluster) config(id uint64) Config {
	cfg := Config{ID: id, Peers: c.peers,
		Raft: fakeSender{c.net, id, true}, Meta: fakeSender{c.net, id, false}}
	if c.dir != "" {
		cfg.Dir = filepath.Join(c.dir, fmt.Sprint(id))
	} else {
		if c.mem == nil {
			c.mem = map[uint64]*MemStore{}
		}
		if c.mem[id] == nil {
			c.mem[id] = NewMemStore()
		}
		cfg.MemStore = c.mem[id]
	}
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	return cfg
}

func (c *cluster) start(id uint64) *Node {
	c.t.Helper()
	cfg := c.config(id)
	if cfg.Dir != "" {
		if err := mkdir(cfg.Dir); err != nil {
			c.t.Fatal(err)
		}
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open node %d: %v", id, err)
	}
	c.net.mu.Lock()
	c.net.nodes[id] = n
	c.net.mu.Unlock()
	c.nodes[id] = n
	return n
}

func (c *cluster) stop(id uint64) {
	c.t.Helper()
	n := c.nodes[id]
	c.net.mu.Lock()
	delete(c.net.nodes, id)
	c.net.mu.Unlock()
	delete(c.nodes, id)
	if err := n.Close(); err != nil {
		c.t.Fatalf("close node %d: %v", id, err)
	}
	if c.dir != "" {
		checkBolt(c.t, filepath.Join(c.dir, fmt.Sprint(id), "meta.db"))
	}
}

func (c *cluster) close() {
	for id := range c.nodes {
		c.stop(id)
	}
}

// checkBolt runs bbolt's consistency check on a closed file.
func checkBolt(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("reopen %s: %v", path, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt check %s: %v", path, err)
	}
}

// waitFor advances (fake) time tick by tick until cond holds, at most
// limit ticks.
func (c *cluster) waitFor(what string, limit int, cond func() bool) {
	c.t.Helper()
	for i := 0; i < limit; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond) // under synctest: advances the fake clock
	}
	if !cond() {
		c.t.Fatalf("%s: not after %d ticks", what, limit)
	}
}

// leader waits for a leader that every running node agrees on.
func (c *cluster) leader() uint64 {
	c.t.Helper()
	var l uint64
	c.waitFor("leader elected", 200, func() bool {
		l = 0
		for _, n := range c.nodes {
			cl := n.Controller()
			if cl == 0 || l != 0 && cl != l {
				return false
			}
			l = cl
		}
		_, ok := c.nodes[l]
		return ok
	})
	return l
}

// registered waits until every running node has registered.
func (c *cluster) registered() {
	c.t.Helper()
	c.waitFor("nodes registered", 300, func() bool {
		for _, n := range c.nodes {
			if n.Incarnation() == 0 {
				return false
			}
		}
		return true
	})
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ready waits, without polling, until every node of c has registered as
// node n sees it.
func (c *cluster) ready(ctx context.Context, n *Node) {
	c.t.Helper()
	w := n.Watch()
	defer w.Close()
	for {
		all := true
		for _, id := range c.peers {
			if _, ok := n.State().Node(id); !ok {
				all = false
			}
		}
		if all {
			return
		}
		if _, err := w.Next(ctx); err != nil {
			c.t.Fatal(err)
		}
	}
}
