package meta

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// gateSender blocks Send while its gate is shut: it stands for anything
// that stalls the driver goroutine (a bbolt fsync that hangs, a slow
// logger...).
type gateSender struct {
	inner Sender
	mu    *sync.Mutex
	shut  *bool
	open  chan struct{}
}

func (g gateSender) Send(to uint64, msg []byte) error {
	g.mu.Lock()
	shut := *g.shut
	g.mu.Unlock()
	if shut {
		<-g.open
	}
	return g.inner.Send(to, msg)
}

// A lease runs out in real time, also while the driver is stalled and its
// tick count stops: Topic must not serve the frozen State as fresh while
// the rest of the group moved on (here: deleted the topic).
func TestLeaseEndsWhileDriverStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newGatedCluster(t)
		l := c.topicT()
		old := c.nodes[l]
		c.waitFor("lease", 100, old.leaseValid)
		g.shut(l) // l's driver blocks at its next raft send
		delete(c.nodes, l)
		l2 := c.leader()
		if err := c.nodes[l2].DeleteTopic(ctxT(t, 10*time.Second), "t"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		_, err := old.Topic(ctxT(t, 5*time.Second), "t")
		close(g.open)
		c.nodes[l] = old
		if err == nil {
			t.Fatal("Topic answered a topic deleted 30 s ago from a lease that ran out long ago")
		}
	})
}

// gate holds the raft sends of the nodes it is told to shut, until open
// is closed (see gateSender).
type gate struct {
	mu    sync.Mutex
	flags map[uint64]*bool
	open  chan struct{}
}

// shut makes node id's driver block at its next raft send.
func (g *gate) shut(id uint64) {
	g.mu.Lock()
	*g.flags[id] = true
	g.mu.Unlock()
}

// newGatedCluster starts a 3-node cluster whose raft sends go through a
// gate.
func newGatedCluster(t *testing.T) (*cluster, *gate) {
	g := &gate{flags: map[uint64]*bool{}, open: make(chan struct{})}
	c := newClusterWith(t, []uint64{1, 2, 3}, false, func(cfg *Config) {
		b := new(bool)
		g.flags[cfg.ID] = b
		cfg.Raft = gateSender{inner: cfg.Raft, mu: &g.mu, shut: b, open: g.open}
	})
	for _, id := range c.peers {
		c.start(id)
	}
	return c, g
}
