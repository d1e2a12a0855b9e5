package meta

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

// InSession holds on every node of a healthy group; a node cut off from
// the others loses it within SessionTimeout (a follower: no heartbeat the
// controller acknowledged; a leader: no quorum's acks either), while the
// others keep it if the controller is not the node cut off; a closed node
// is never in session.
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
				// (With the leader cut off, the others are without a
				// controller until they elect one, and their sessions may
				// run out meanwhile: no one is in touch with a controller.)
				if id != cut && cut != l && !n.InSession() {
					t.Fatalf("node %d out of session while only node %d is cut off (leader was %d; controllers now %d %d %d)", id, cut, l,
						c.nodes[1].Controller(), c.nodes[2].Controller(), c.nodes[3].Controller())
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

// A node whose messages no longer leave it (it still hears the raft
// leader) is fenced by the controller, which hears no more heartbeats
// from it; the node must be out of session by then: its session runs on
// the controller's acknowledgements of its heartbeats, not on what it
// hears.
func TestInSessionEndsBeforeOneWayCutNodeIsFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		x := otherThan(c.peers, l)[0]
		for _, o := range otherThan(c.peers, x) {
			c.net.SetLink(x, o, transport.LinkFaults{Drop: 1})
		}
		c.waitFor("x fenced", 100, func() bool {
			ni, _ := c.nodes[l].State().Node(x)
			return ni.Fenced
		})
		if c.nodes[x].InSession() {
			t.Fatalf("node %d fenced by controller %d, yet in session", x, l)
		}
		c.net.Heal()
	})
}

// A leadership handover (Resign, as Cluster.Close of the controller's node
// does) leaves every healthy node in session throughout, the old and the
// new controller included.
func TestInSessionAcrossResign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		for _, a := range c.peers {
			for _, b := range c.peers {
				if a != b {
					c.net.SetLink(a, b, transport.LinkFaults{Delay: 20 * time.Millisecond})
				}
			}
		}
		time.Sleep(c.nodes[l].cfg.SessionTimeout)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- c.nodes[l].Resign(ctx)
		}()
		out := map[uint64]int{}
		for range 1000 {
			for id, n := range c.nodes {
				if !n.InSession() {
					out[id]++
				}
			}
			time.Sleep(time.Millisecond)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(out) > 0 {
			t.Fatalf("controller %d resigned: nodes out of session for so many of 1000 1-ms samples: %v", l, out)
		}
		c.net.Heal()
	})
}
