package meta

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

// The leader's lease rests on its followers not voting for another node
// within an election timeout of hearing from it. A follower that restarts
// has forgotten whom it heard from (raft starts with no leader, so no
// lease check): it must still not vote for an election timeout. Here f1
// acks the leader l and restarts within l's lease; f2, cut off from l,
// campaigns. Had f1 voted, f2 would commit a CreateTopic that l, still
// holding its lease, leaves out of Topics.
func TestRestartedFollowerKeepsLeaderLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, []uint64{1, 2, 3}, false, func(cfg *Config) {
			cfg.SessionTimeout = time.Hour // no fences: logs stay level
		})
		for _, id := range c.peers {
			c.start(id)
		}
		c.topicT()
		tick := 100 * time.Millisecond
		for attempt := 0; attempt < 40; attempt++ {
			c.net.Heal()
			for _, a := range c.peers {
				for _, b := range c.peers {
					if a != b {
						c.net.SetLink(a, b, transport.LinkFaults{})
					}
				}
			}
			l := c.leader()
			others := otherThan(c.peers, l)
			f1, f2 := others[0], others[1]
			c.converged("healed")
			// f2 cut off from l.
			c.net.SetLink(l, f2, transport.LinkFaults{Drop: 1})
			c.net.SetLink(f2, l, transport.LinkFaults{Drop: 1})
			time.Sleep(time.Duration(8+attempt%13) * tick)
			if !c.nodes[l].leaseValid() {
				continue
			}
			// f1 restarts; l's next few heartbeats to it are lost.
			c.net.SetLink(l, f1, transport.LinkFaults{Drop: 1})
			c.stop(f1)
			c.start(f1)
			won := false
			for range 40 {
				time.Sleep(tick / 10)
				if c.nodes[f2].Controller() == f2 {
					won = true
					break
				}
			}
			if !won || !c.nodes[l].leaseValid() {
				continue
			}
			name := fmt.Sprintf("u%d", attempt)
			_, err := c.nodes[f2].CreateTopic(ctxT(t, time.Second), name, TopicConfig{Partitions: 1})
			ts, terr := c.nodes[l].Topics(ctxT(t, time.Second))
			if err == nil && terr == nil && !slices.ContainsFunc(ts, func(tp *Topic) bool { return tp.Name == name }) {
				t.Fatalf("attempt %d: f2 (%d) elected while old leader %d held its lease, and Topics there misses %q", attempt, f2, l, name)
			}
			return
		}
		// No attempt had f2 elected within l's lease: as it must be.
	})
}
