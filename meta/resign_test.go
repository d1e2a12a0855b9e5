package meta

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// Resign on the controller hands the role to another node at once (well
// within an election timeout of fake time); the group goes on taking
// proposals, through the old controller too. On a follower it changes
// nothing.
func TestResignHandsTheControllerOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		old := c.leader()
		c.registered()
		var follower uint64
		for id := range c.nodes {
			if id != old {
				follower = id
			}
		}
		if err := c.nodes[follower].Resign(ctxT(t, time.Second)); err != nil {
			t.Fatalf("Resign on follower %d: %v", follower, err)
		}
		if l := c.nodes[old].Controller(); l != old {
			t.Fatalf("Resign on a follower moved the controller from %d to %d", old, l)
		}
		start := time.Now()
		if err := c.nodes[old].Resign(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Resign on controller %d: %v", old, err)
		}
		took := time.Since(start) // fake time
		now := c.nodes[old].Controller()
		if now == old || now == 0 {
			t.Fatalf("after Resign node %d takes %d for the controller", old, now)
		}
		election := time.Duration(c.nodes[old].cfg.ElectionTicks) * c.nodes[old].cfg.TickInterval
		if took >= election {
			t.Errorf("Resign took %v of fake time, an election timeout is %v: no handover", took, election)
		}
		if _, err := c.nodes[old].CreateTopic(ctxT(t, 10*time.Second), "after", TopicConfig{Partitions: 1}); err != nil {
			t.Fatalf("CreateTopic through the old controller: %v", err)
		}
		if l := c.leader(); l != now {
			t.Fatalf("controller %d after the handover to %d", l, now)
		}
		for id, n := range c.nodes {
			if _, err := n.LinearizableTopic(ctxT(t, 10*time.Second), "after"); err != nil {
				t.Fatalf("node %d after the handover: %v", id, err)
			}
		}
	})
}

// A controller cut off from every other node cannot hand over: Resign
// returns ctx's error. So does a cancelled ctx; a closed node returns
// ErrClosed.
func TestResignErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.leader()
		c.registered()
		n := c.nodes[l]
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		if err := n.Resign(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Resign with a cancelled ctx: %v", err)
		}
		c.net.Isolate(l)
		if err := n.Resign(ctxT(t, 3*time.Second)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Resign of an isolated controller: %v, want the deadline", err)
		}
		c.net.Heal()
		c.stop(l)
		if err := n.Resign(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Resign after Close: %v, want ErrClosed", err)
		}
	})
}
