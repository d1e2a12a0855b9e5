package meta

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestClusterControllerCrashCountsTheElection: when the controller itself
// dies, the new one fences it SessionTimeout after it was last heard from,
// or as soon as it takes office if the election took longer: the election
// does not add a whole fresh session on top. The surviving nodes, whose
// heartbeats went to the dead controller until they learnt of the new
// one, are not fenced.
func TestClusterControllerCrashCountsTheElection(t *testing.T) {
	const tick = 100 * time.Millisecond
	const session = 40 * tick // SessionTimeout/tick as replog's root sets it
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, []uint64{1, 2, 3}, false, func(cfg *Config) {
			cfg.TickInterval, cfg.SessionTimeout = tick, session
		})
		for _, id := range c.peers {
			c.start(id)
		}
		dead := c.leader()
		c.registered()
		for _, n := range c.nodes {
			c.ready(ctxT(t, time.Minute), n)
		}
		var survivors []*Node
		for id, n := range c.nodes {
			if id != dead {
				survivors = append(survivors, n)
			}
		}
		c.stop(dead)
		stopped := time.Now()
		var elected, fenced time.Time
		for i := 0; fenced.IsZero(); i++ {
			if i == 300 {
				t.Fatalf("node %d not fenced after %d ticks", dead, i)
			}
			time.Sleep(tick) // under synctest: advances the fake clock
			for _, n := range survivors {
				if elected.IsZero() && n.Controller() == n.ID() {
					elected = time.Now()
				}
				if nd, _ := n.State().Node(dead); nd.Fenced && fenced.IsZero() {
					fenced = time.Now()
				}
			}
		}
		// The new controller takes office once it applied an entry of its
		// term; the fence then takes a tick, a commit and our polling: a few
		// ticks of slack.
		const slack = 4 * tick
		election, took := elected.Sub(stopped), fenced.Sub(stopped)
		bound := max(session, election) + slack
		t.Logf("controller %d stopped; successor elected after %v, %d fenced after %v (bound %v)",
			dead, election, dead, took, bound)
		if elected.IsZero() || took > bound {
			t.Errorf("dead controller fenced %v after it stopped, successor elected after %v: "+
				"want within max(SessionTimeout %v, election) + %v",
				took, election, session, slack)
		}
		// The survivors keep their sessions through and after the change.
		time.Sleep(2 * session)
		for _, n := range survivors {
			for _, m := range survivors {
				if nd, _ := n.State().Node(m.ID()); nd.Fenced || nd.Incarnation != 1 {
					t.Errorf("node %d sees live node %d as %+v", n.ID(), m.ID(), nd)
				}
			}
		}
	})
}
