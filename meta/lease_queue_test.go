package meta

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

// As TestLeaseEndsWhileDriverStalls, but the followers' heartbeat
// responses reach the stalled leader during its stall (links to it are
// slow), and wait in raftIn. Their lease counts from when they arrived,
// not from when the driver gets to them after the stall: the old leader
// must not grant itself a fresh lease on acks from long ago while the
// group has moved on (new leader, topic deleted).
func TestLeaseFromAcksQueuedDuringStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newGatedCluster(t)
		l := c.topicT()
		old := c.nodes[l]
		tick := old.cfg.TickInterval
		delay := 20 * tick
		for _, id := range c.peers {
			if id != l {
				c.net.SetLink(id, l, transport.LinkFaults{Delay: delay})
			}
		}
		c.waitFor("lease", 100, old.leaseValid)
		time.Sleep(2 * delay)    // a steady stream of delayed acks is on its way to l
		g.shut(l)                // l's driver blocks at its next raft send
		time.Sleep(delay + tick) // the acks in flight arrive and queue in raftIn
		synctest.Wait()
		for _, id := range c.peers {
			if id != l {
				c.net.SetLink(id, l, transport.LinkFaults{Drop: 1}) // nothing newer reaches l
			}
		}
		delete(c.nodes, l)
		l2 := c.leader()
		if err := c.nodes[l2].DeleteTopic(ctxT(t, 20*time.Second), "t"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		close(g.open) // the stall ends
		synctest.Wait()
		valid := old.leaseValid()
		_, err := old.Topic(ctxT(t, time.Second), "t")
		c.nodes[l] = old
		c.net.Heal()
		if valid || err == nil {
			t.Fatalf("old leader %d, stalled 30 s and cut off since: lease valid %v, Topic(t) of a topic deleted by new leader %d: err %v",
				l, valid, l2, err)
		}
	})
}
