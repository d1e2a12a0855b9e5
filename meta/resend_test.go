package meta

import (
	"testing"
	"testing/synctest"
	"time"
)

// A proposal the old leader lost (it was cut off) goes to the new leader
// as soon as the proposer learns of it, not at its next retry.
func TestProposalResentToANewLeaderAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		old := c.leader()
		c.registered()
		var f *Node
		for id, n := range c.nodes {
			if id != old {
				f = n
			}
		}
		c.net.Isolate(old)
		done := make(chan time.Time, 1)
		go func() {
			if _, err := f.CreateTopic(ctxT(t, time.Minute), "t", TopicConfig{Partitions: 1, ReplicationFactor: 2}); err != nil {
				t.Errorf("CreateTopic on node %d: %v", f.ID(), err)
			}
			done <- time.Now()
		}()
		// Watch, on the fake clock, for the moment the proposer learns of
		// a new leader.
		var known time.Time
		for known.IsZero() {
			if l := f.Controller(); l != 0 && l != old {
				known = time.Now()
				break
			}
			time.Sleep(time.Millisecond)
		}
		returned := <-done
		if d := returned.Sub(known); d >= f.cfg.TickInterval {
			t.Errorf("CreateTopic returned %v after node %d learned of the new leader: it waited for its retry", d, f.ID())
		}
		c.net.Heal()
	})
}
