package meta

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/replog/replog/internal/mux"
	"github.com/replog/replog/transport"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is a meta group under test.
type cluster struct {
	t     testing.TB
	seed  int64
	net   *transport.MemNetwork
	eps   map[uint64]*transport.MemEndpoint
	peers []uint64
	dir   string // "" in memory
	nodes map[uint64]*Node
	cfg   func(*Config)
	mem   map[uint64]*MemStore // in memory: each node's log across restarts
}

func newCluster(t testing.TB, n int, onDisk bool) *cluster {
	t.Helper()
	var peers []uint64
	for i := 1; i <= n; i++ {
		peers = append(peers, uint64(i))
	}
	c := newClusterWith(t, peers, onDisk, nil)
	for _, id := range c.peers {
		c.start(id)
	}
	return c
}

// newClusterWith makes a cluster of peers on a fresh MemNetwork without
// starting any node; cfg adjusts every node's Config.
func newClusterWith(t testing.TB, peers []uint64, onDisk bool, cfg func(*Config)) *cluster {
	c := &cluster{t: t, seed: 1, peers: peers, cfg: cfg, nodes: map[uint64]*Node{},
		eps: map[uint64]*transport.MemEndpoint{}}
	c.net = transport.NewMemNetwork(c.seed)
	if onDisk {
		c.dir = t.TempDir()
	}
	t.Cleanup(c.close)
	return c
}

func (c *cluster) config(id uint64) (Config, *mux.Mux) {
	ep := c.net.Endpoint(id)
	c.eps[id] = ep
	m := mux.New(ep)
	cfg := Config{ID: id, Peers: c.peers, Raft: m.Sender(mux.TagRaft), Meta: m.Sender(mux.TagMeta)}
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
	return cfg, m
}

func (c *cluster) start(id uint64) *Node {
	c.t.Helper()
	cfg, m := c.config(id)
	if cfg.Dir != "" {
		if err := mkdir(cfg.Dir); err != nil {
			c.t.Fatal(err)
		}
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open node %d: %v", id, err)
	}
	for _, err := range []error{m.Handle(mux.TagRaft, n.HandleRaft), m.Handle(mux.TagMeta, n.HandleMeta), m.Start()} {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	c.nodes[id] = n
	return n
}

func (c *cluster) stop(id uint64) {
	c.t.Helper()
	n := c.nodes[id]
	delete(c.nodes, id)
	if err := c.eps[id].Close(); err != nil {
		c.t.Fatalf("close endpoint %d: %v", id, err)
	}
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
	if err := c.net.Close(); err != nil {
		c.t.Errorf("close network: %v", err)
	}
}

// setDrop makes every link between peers drop messages with probability p.
func (c *cluster) setDrop(p float64) {
	for _, a := range c.peers {
		for _, b := range c.peers {
			if a != b {
				c.net.SetLink(a, b, transport.LinkFaults{Drop: p})
			}
		}
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

// topicT waits for a leader and for every node's registration, creates
// topic "t" (one partition) through the leader, and returns the leader.
func (c *cluster) topicT() uint64 {
	c.t.Helper()
	l := c.leader()
	c.registered()
	if _, err := c.nodes[l].CreateTopic(ctxT(c.t, 10*time.Second), "t", TopicConfig{Partitions: 1}); err != nil {
		c.t.Fatal(err)
	}
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

// converged waits until every running node holds byte-identical state (the
// same command sequence applied), failing after a bounded wait.
func (c *cluster) converged(what string) {
	c.t.Helper()
	var diff string
	same := func() bool {
		var want []byte
		var wantID uint64
		for id, n := range c.nodes {
			got := encodeSnapshot(n.State(), n.offsets.Load())
			if want == nil {
				want, wantID = got, id
			} else if !bytes.Equal(got, want) {
				diff = fmt.Sprintf("node %d:\n%s\nnode %d:\n%s", id, got, wantID, want)
				return false
			}
		}
		return true
	}
	for range 300 {
		if same() {
			return
		}
		time.Sleep(100 * time.Millisecond) // under synctest: advances the fake clock
	}
	c.t.Fatalf("%s: states differ after 300 ticks:\n%s", what, diff)
}
