package meta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

// A node whose metadata lags (every message to it slow) has applied a
// deletion once DeleteTopic returns, wherever DeleteTopic was called: no
// node serves a deleted topic after the call.
func TestDeleteTopicWaitsForLaggingReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		var slow, caller uint64
		for _, id := range c.peers {
			switch {
			case id == l:
			case slow == 0:
				slow = id
			default:
				caller = id
			}
		}
		c.waitFor("topic t on every node", 100, func() bool {
			_, ok := c.nodes[slow].State().Topic("t")
			return ok
		})
		if tp, _ := c.nodes[slow].State().Topic("t"); len(tp.Partitions[0].Replicas) != 3 {
			t.Fatalf("topic t %+v: want 3 replicas", tp)
		}
		delay := 5 * c.nodes[l].cfg.TickInterval
		for _, id := range c.peers {
			if id != slow {
				c.net.SetLink(id, slow, transport.LinkFaults{Delay: delay})
			}
		}
		start := time.Now()
		if err := c.nodes[caller].DeleteTopic(ctxT(t, 10*time.Second), "t"); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.nodes[slow].State().Topic("t"); ok {
			t.Fatalf("DeleteTopic returned on node %d after %v, yet lagging node %d still has the topic",
				caller, time.Since(start), slow)
		}
		c.net.Heal()
	})
}

// A replica node that stopped is waited for until the controller fences
// it, no longer.
func TestDeleteTopicWaitsForStoppedReplicaUntilFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		gone := otherThan(c.peers, l)[0]
		c.stop(gone)
		start := time.Now()
		if err := c.nodes[l].DeleteTopic(ctxT(t, 10*time.Second), "t"); err != nil {
			t.Fatal(err)
		}
		info, _ := c.nodes[l].State().Node(gone)
		if !info.Fenced {
			t.Fatalf("DeleteTopic returned after %v with stopped node %d unfenced: %+v", time.Since(start), gone, info)
		}
		if d, limit := time.Since(start), 2*c.nodes[l].cfg.SessionTimeout; d > limit {
			t.Fatalf("DeleteTopic took %v with a stopped replica, over 2 × SessionTimeout (%v)", d, limit)
		}
	})
}

// A DeleteTopic whose replica nodes cannot be reached ends with its ctx
// and names them.
func TestDeleteTopicWaitEndsWithCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		// Nothing reaches cut, so it never applies the deletion; the
		// controller fences it only a session after it lost its leader,
		// and the ctx ends before.
		cut := c.cutOffFollower(l)
		ctx := ctxT(t, c.nodes[l].cfg.SessionTimeout/2)
		err := c.nodes[l].DeleteTopic(ctx, "t")
		if err == nil || ctx.Err() == nil {
			t.Fatalf("DeleteTopic with node %d unreachable: %v (ctx %v)", cut, err, ctx.Err())
		}
		if want := fmt.Sprintf("nodes [%d]", cut); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
		if _, ok := c.nodes[l].State().Topic("t"); ok {
			t.Fatal("the deletion was not applied on the caller")
		}
		c.net.Heal()
	})
}

// A DeleteTopic of a topic already deleted (a caller's retry after an
// error) answers ErrUnknownTopic only once every node has applied the
// deletion.
func TestDeleteTopicUnknownWaitsForEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		cut := c.cutOffFollower(l)
		short := ctxT(t, c.nodes[l].cfg.SessionTimeout/4)
		if err := c.nodes[l].DeleteTopic(short, "t"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("DeleteTopic with node %d cut off: %v, want the ctx's error", cut, err)
		}
		short = ctxT(t, c.nodes[l].cfg.SessionTimeout/4)
		if err := c.nodes[l].DeleteTopic(short, "t"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("retried DeleteTopic with node %d still cut off: %v, want the ctx's error", cut, err)
		}
		c.net.Heal()
		if err := c.nodes[l].DeleteTopic(ctxT(t, 10*time.Second), "t"); !errors.Is(err, ErrUnknownTopic) {
			t.Fatalf("retried DeleteTopic after the heal: %v, want ErrUnknownTopic", err)
		}
		if _, ok := c.nodes[cut].State().Topic("t"); ok {
			t.Fatalf("DeleteTopic answered ErrUnknownTopic, yet node %d still has the topic", cut)
		}
	})
}

// cutOffFollower picks a node other than leader l and drops every message
// to it; it returns the node.
func (c *cluster) cutOffFollower(l uint64) uint64 {
	cut := otherThan(c.peers, l)[0]
	for _, id := range c.peers {
		if id != cut {
			c.net.SetLink(id, cut, transport.LinkFaults{Drop: 1})
		}
	}
	return cut
}
