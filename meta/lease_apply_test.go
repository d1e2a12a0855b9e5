package meta

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// commitGate delivers a raft message, and then, once armed, blocks the
// sending driver after the first message to `to` that carries a commit
// index above `above`: the leader has told a follower of a commit in a
// Ready whose CommittedEntries it has not applied yet (driver.handleReady
// sends before it applies).
type commitGate struct {
	inner Sender
	mu    *sync.Mutex
	armed *bool
	above *uint64
	to    *uint64
	hit   chan struct{}
	open  chan struct{}
}

func (g commitGate) Send(to uint64, msg []byte) error {
	err := g.inner.Send(to, msg)
	g.mu.Lock()
	block := false
	if *g.armed && to == *g.to && len(msg) > 1 {
		var m pb.Message
		if proto.Unmarshal(msg[1:], &m) == nil && m.GetCommit() > *g.above {
			block = true
			*g.armed = false
		}
	}
	g.mu.Unlock()
	if block {
		close(g.hit)
		<-g.open
	}
	return err
}

// Topics on the controller holding its lease reads its applied State. A
// follower can apply (and its CreateTopic return) an entry the leader has
// committed but not yet applied: Topics on the leader must then not list
// the topics without it (it waits for a barrier instead, here until its
// ctx ends: the leader's driver is held in its send).
func TestLeaderLeaseReadWaitsForCommittedUnapplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		armed := map[uint64]*bool{}
		above, to := new(uint64), new(uint64)
		hit, open := make(chan struct{}), make(chan struct{})
		c := newClusterWith(t, []uint64{1, 2, 3}, false, func(cfg *Config) {
			b := new(bool)
			armed[cfg.ID] = b
			cfg.Raft = commitGate{inner: cfg.Raft, mu: &mu, armed: b, above: above, to: to, hit: hit, open: open}
		})
		for _, id := range c.peers {
			c.start(id)
		}
		l := c.topicT()
		f := otherThan(c.peers, l)[0]
		c.waitFor("lease", 100, c.nodes[l].leaseValid)
		mu.Lock()
		*above = c.nodes[l].State().Index()
		*to = f
		*armed[l] = true
		mu.Unlock()
		errc := make(chan error, 1)
		go func() {
			_, err := c.nodes[f].CreateTopic(ctxT(t, 10*time.Second), "new", TopicConfig{Partitions: 1})
			errc <- err
		}()
		<-hit
		if err := <-errc; err != nil {
			close(open)
			t.Fatal(err)
		}
		ts, err := c.nodes[l].Topics(ctxT(t, time.Second))
		lease := c.nodes[l].leaseValid()
		close(open)
		if err != nil {
			return // no answer rather than a stale one
		}
		for _, tp := range ts {
			if tp.Name == "new" {
				return
			}
		}
		t.Fatalf("CreateTopic(new) returned on node %d; Topics on controller %d (lease valid %v) lists %d topics without it",
			f, l, lease, len(ts))
	})
}
