package meta

import (
	"testing"
	"testing/synctest"
	"time"
)

// InSession holds on every node of a healthy group; a node cut off from
// the others loses it within SessionTimeout (a follower: no word from the
// leader; a leader: no quorum's acks), while the others keep it; a closed
// node is never in session.
func TestInSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		for id, n := range c.nodes {
			if !n.InSession() {
				t.Fatalf("node %d (leader %d) out of session in a healthy group", id, l)
			}
		}
		for _, cut := range []uint64{otherThan(c.peers, l)[0], l} {
			c.net.Isolate(cut)
			time.Sleep(c.nodes[cut].cfg.SessionTimeout + c.nodes[cut].cfg.TickInterval)
			if c.nodes[cut].InSession() {
				t.Fatalf("node %d, cut off for a session, still in session", cut)
			}
			for id, n := range c.nodes {
				if id != cut && !n.InSession() {
					t.Fatalf("node %d out of session while only node %d is cut off", id, cut)
				}
			}
			c.net.Heal()
			c.waitFor("back in session", 100, c.nodes[cut].InSession)
		}
		n := c.nodes[l]
		c.stop(l)
		if n.InSession() {
			t.Fatal("a closed node in session")
		}
	})
}
