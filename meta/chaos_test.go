package meta

import (
	"fmt"
	"math/rand"
	"testing"
	"testing/synctest"
	"time"
)

// TestClusterChaos runs seeded rounds of partitions, restarts from disk and
// lossy links against a 5-node group while topics are created through
// random nodes. Afterwards, healed, every node has every topic whose
// CreateTopic returned, and all nodes hold byte-identical state.
func TestClusterChaos(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { chaos(t, seed) })
		})
	}
}

func chaos(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	c := newClusterWith(t, []uint64{1, 2, 3, 4, 5}, true, func(cfg *Config) { cfg.SnapshotEntries = 16 })
	c.seed = seed
	for _, id := range c.peers {
		c.start(id)
	}
	c.leader()
	c.registered()
	acked := map[string]bool{}
	for round := range 12 {
		switch rng.Intn(4) {
		case 0: // a partition: a random minority split off
			perm := rng.Perm(5)
			k := 1 + rng.Intn(2)
			var a, b []uint64
			for i, p := range perm {
				if i < k {
					a = append(a, uint64(p+1))
				} else {
					b = append(b, uint64(p+1))
				}
			}
			c.net.Partition(a, b)
		case 1: // restart a node from disk
			id := uint64(rng.Intn(5) + 1)
			c.stop(id)
			c.start(id)
		case 2:
			c.setDrop(0.3)
		case 3:
			c.setDrop(0)
			c.net.Heal()
		}
		for i := range 3 {
			name := fmt.Sprintf("r%d-%d", round, i)
			n := c.nodes[uint64(rng.Intn(5)+1)]
			if _, err := n.CreateTopic(ctxT(t, 3*time.Second), name, TopicConfig{Partitions: 2, ReplicationFactor: 1}); err == nil {
				acked[name] = true
			}
		}
	}
	c.setDrop(0)
	c.net.Heal()
	c.leader()
	for _, n := range c.nodes {
		if err := n.Barrier(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("seed %d: node %d barrier: %v", seed, n.ID(), err)
		}
		for name := range acked {
			if _, ok := n.State().Topic(name); !ok {
				t.Fatalf("seed %d: node %d lost acknowledged topic %s", seed, n.ID(), name)
			}
		}
	}
	if len(acked) == 0 {
		t.Fatalf("seed %d: nothing was acknowledged", seed)
	}
	c.converged(fmt.Sprint("seed ", seed))
}
