package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

func TestClusterCreateTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.leader()
		c.registered()
		tp, err := c.nodes[2].CreateTopic(ctxT(t, 10*time.Second), "orders", TopicConfig{Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		if tp.Config.ReplicationFactor != 3 || tp.Config.MinInSyncReplicas != 2 || len(tp.Partitions) != 3 {
			t.Fatalf("topic %+v", tp)
		}
		for _, p := range tp.Partitions {
			if p.Leader == 0 || len(p.ISR) != 3 {
				t.Fatalf("partition %+v", p)
			}
		}
		for id, n := range c.nodes {
			got, err := n.Topic(ctxT(t, 10*time.Second), "orders")
			if err != nil || got.ID != tp.ID {
				t.Fatalf("node %d: %v %v", id, got, err)
			}
		}
		if _, err := c.nodes[l].CreateTopic(ctxT(t, 10*time.Second), "orders", TopicConfig{Partitions: 1}); !errors.Is(err, ErrTopicExists) {
			t.Fatalf("second create: %v", err)
		}
		if err := c.nodes[3].DeleteTopic(ctxT(t, 10*time.Second), "orders"); err != nil {
			t.Fatal(err)
		}
		for id, n := range c.nodes {
			// A lease read may trail a delete; a linearizable one may not.
			if _, err := n.LinearizableTopic(ctxT(t, 10*time.Second), "orders"); !errors.Is(err, ErrUnknownTopic) {
				t.Fatalf("node %d after delete: %v", id, err)
			}
		}
	})
}

// leaderOf returns a partition's leader as node id sees it.
func partitionOf(n *Node, topic string, p int32) Partition {
	pp, ok := n.State().Partition(topic, p)
	if !ok {
		return Partition{}
	}
	return *pp
}

func TestClusterRestartFromDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, true)
		c.leader()
		c.registered()
		for _, name := range []string{"a", "b", "c"} {
			if _, err := c.nodes[1].CreateTopic(ctxT(t, 10*time.Second), name, TopicConfig{Partitions: 2}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.nodes[1].CommitOffset(ctxT(t, 10*time.Second), "g", "a", 1, 42); err != nil {
			t.Fatal(err)
		}
		before := c.nodes[1].State()
		incs := map[uint64]uint64{}
		for _, id := range c.peers {
			incs[id] = c.nodes[id].Incarnation()
			c.stop(id)
		}
		for _, id := range c.peers {
			c.start(id)
		}
		c.leader()
		c.registered()
		for _, id := range c.peers {
			n := c.nodes[id]
			if n.Incarnation() != incs[id]+1 {
				t.Fatalf("node %d incarnation %d after restart, was %d", id, n.Incarnation(), incs[id])
			}
			if err := n.Barrier(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"a", "b", "c"} {
				got, ok := n.State().Topic(name)
				want, _ := before.Topic(name)
				if !ok || got.ID != want.ID || len(got.Partitions) != 2 {
					t.Fatalf("node %d topic %s: %+v", id, name, got)
				}
				for _, p := range got.Partitions {
					if p.Leader == 0 {
						t.Fatalf("node %d: %s/%d has no leader after restart", id, name, p.Partition)
					}
				}
			}
			if o, ok := n.CommittedOffset("g", "a", 1); !ok || o != 42 {
				t.Fatalf("node %d offset %d %v", id, o, ok)
			}
		}
	})
}

func TestClusterLeaderLossAndReelection(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, size, false)
				l := c.leader()
				c.registered()
				c.stop(l)
				l2 := c.leader()
				if l2 == l {
					t.Fatalf("leader %d survived its own stop", l)
				}
				if _, err := c.nodes[l2].CreateTopic(ctxT(t, 10*time.Second), "t", TopicConfig{Partitions: 4, ReplicationFactor: 2}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestClusterFencing: a node that stops heartbeating is fenced within
// SessionTimeout and its leaderships move to ISR members with epoch+1; when
// it restarts it registers a new incarnation and is unfenced; back in the
// ISR it regains the leadership it prefers.
func TestClusterFencing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, true)
		l := c.leader()
		c.registered()
		victim := uint64(1)
		if victim == l {
			victim = 2
		}
		tp, err := c.nodes[l].CreateTopic(ctxT(t, 10*time.Second), "t", TopicConfig{Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		var led []Partition
		for _, p := range tp.Partitions {
			if p.Leader == victim {
				led = append(led, p)
			}
		}
		if len(led) != 1 {
			t.Fatalf("victim %d leads %d of 3 partitions, want 1 (balanced)", victim, len(led))
		}
		c.stop(victim)
		ln := c.nodes[l]
		c.waitFor("victim fenced", 60, func() bool {
			n, _ := ln.State().Node(victim)
			return n.Fenced
		})
		p := partitionOf(ln, "t", led[0].Partition)
		if p.Leader == victim || p.Leader == 0 || p.LeaderEpoch <= led[0].LeaderEpoch || p.InISR(victim) {
			t.Fatalf("after fencing %d: %+v", victim, p)
		}
		c.start(victim)
		c.waitFor("victim unfenced", 100, func() bool {
			n, _ := ln.State().Node(victim)
			return !n.Fenced && n.Incarnation == 2
		})
		// The leader takes the victim back into the ISR; the controller then
		// returns the preferred leadership to it.
		p = partitionOf(ln, "t", led[0].Partition)
		isr := append(append([]uint64(nil), p.ISR...), victim)
		if _, err := c.nodes[p.Leader].AlterISR(ctxT(t, 10*time.Second), "t", 0, p.Partition, p.LeaderEpoch, p.PartitionEpoch, isr); err != nil {
			t.Fatal(err)
		}
		c.waitFor("preferred leader back", 100, func() bool {
			return partitionOf(ln, "t", led[0].Partition).Leader == victim
		})
		// A stale AlterISR is refused.
		if _, err := c.nodes[victim].AlterISR(ctxT(t, 10*time.Second), "t", 0, p.Partition, p.LeaderEpoch, p.PartitionEpoch, isr); !errors.Is(err, ErrStaleEpoch) {
			t.Fatalf("stale AlterISR: %v", err)
		}
	})
}

// TestClusterMinority: a node cut off from the majority cannot commit, and
// its linearizable reads fail within their ctx; once its lease runs out
// its lease-checked reads fail too. The majority goes on.
func TestClusterMinority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 5, false)
		l := c.topicT()
		// Cut off the leader with one follower: it must lose its lease.
		others := otherThan(c.peers, l)
		minority := []uint64{others[0], l}
		majority := others[1:]
		c.net.Partition(minority, majority)
		for _, id := range minority {
			n := c.nodes[id]
			if _, err := n.CreateTopic(ctxT(t, 3*time.Second), "m"+fmt.Sprint(id), TopicConfig{Partitions: 1}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("minority node %d committed: %v", id, err)
			}
			if err := n.Barrier(ctxT(t, time.Second)); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("minority node %d barrier: %v", id, err)
			}
			if _, err := n.Topic(ctxT(t, time.Second), "t"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("minority node %d lease read after its lease ran out: %v", id, err)
			}
		}
		var nl uint64
		c.waitFor("majority leader", 100, func() bool {
			nl = c.nodes[majority[0]].Controller()
			return nl != 0 && nl != l && slices.Contains(majority, nl)
		})
		if _, err := c.nodes[majority[0]].CreateTopic(ctxT(t, 10*time.Second), "u", TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		c.net.Heal()
		for _, id := range minority {
			if _, err := c.nodes[id].Topic(ctxT(t, 10*time.Second), "u"); err != nil {
				t.Fatalf("node %d after heal: %v", id, err)
			}
		}
	})
}

// TestClusterLossyNetwork: with a fifth of all messages dropped, proposals
// from followers and reads still complete inside their contexts, each
// topic is created once, and every node ends with the same state.
func TestClusterLossyNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		c.leader()
		c.registered()
		c.setDrop(0.2)
		for i := range 12 {
			n := c.nodes[uint64(i%3+1)]
			_, err := n.CreateTopic(ctxT(t, 30*time.Second), fmt.Sprint("t", i), TopicConfig{Partitions: 2})
			if err != nil {
				t.Fatalf("seed %d: create t%d on node %d: %v", c.seed, i, n.ID(), err)
			}
			if _, err := c.nodes[uint64((i+1)%3+1)].Topic(ctxT(t, 30*time.Second), fmt.Sprint("t", i)); err != nil {
				t.Fatalf("seed %d: read t%d: %v", c.seed, i, err)
			}
		}
		c.setDrop(0)
		for _, n := range c.nodes {
			if err := n.Barrier(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := len(n.State().Topics()); got != 12 {
				t.Fatalf("seed %d: node %d has %d topics", c.seed, n.ID(), got)
			}
		}
	})
}

// TestClusterDrainAndUnhealthy: a draining node hands its leaderships to
// other ISR members at once; an unhealthy one too, until it recovers and
// the controller gives its preferred leaderships back.
func TestClusterDrainAndUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.leader()
		c.registered()
		ctx := ctxT(t, 10*time.Second)
		if _, err := c.nodes[l].CreateTopic(ctx, "t", TopicConfig{Partitions: 6}); err != nil {
			t.Fatal(err)
		}
		leads := func(id uint64) int {
			n := 0
			for _, p := range c.nodes[l].State().Topics()[0].Partitions {
				if p.Leader == id {
					n++
				}
			}
			return n
		}
		sick := otherThan(c.peers, l)[0]
		if err := c.nodes[sick].SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := c.nodes[l].Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if n := leads(sick); n != 0 {
			t.Fatalf("unhealthy node %d still leads %d partitions", sick, n)
		}
		if err := c.nodes[sick].SetUnhealthy(ctx, false); err != nil {
			t.Fatal(err)
		}
		c.waitFor("preferred leaderships back", 50, func() bool { return leads(sick) == 2 })
		drained := otherThan(c.peers, l)[1]
		if err := c.nodes[drained].Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.nodes[l].Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if n := leads(drained); n != 0 {
			t.Fatalf("draining node %d still leads %d partitions", drained, n)
		}
		// It registers anew on restart and is eligible again.
		c.stop(drained)
		c.start(drained)
		c.waitFor("drained node leads again", 100, func() bool {
			nd, _ := c.nodes[l].State().Node(drained)
			return nd.Incarnation == 2 && !nd.Draining && !nd.Fenced
		})
	})
}

// TestClusterLostLogStopsNode: a node that comes back without its log
// (in memory, no MemStore) makes raft find its log lost: the node stops
// with an error instead of taking the process down.
func TestClusterLostLogStopsNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		f := otherThan(c.peers, l)[0]
		c.stop(f)
		c.mem[f] = NewMemStore() // the log is gone
		n := c.start(f)
		c.waitFor("node stopped", 50, func() bool { return n.Err() != nil })
		if _, err := n.Topic(ctxT(t, time.Second), "x"); !errors.Is(err, ErrClosed) {
			t.Fatalf("call on a stopped node: %v", err)
		}
	})
}

// After a restart the node replays its log: an entry it proposed in its
// previous Open (From its ID, Seq 1) must not answer a proposal of the new
// Open that also has Seq 1, which would return before its own command is
// applied, with the other one's result.
func TestRestartReplayAnswersNoNewProposal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, true)
		c.leader()
		c.registered()
		// Node 1's first proposal of this Open: Seq 1.
		if _, err := c.nodes[1].CreateTopic(ctxT(t, 10*time.Second), "a", TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		c.stop(1)
		n := c.start(1)
		// The first proposal of the new Open: Seq 1 again.
		tp, err := n.CreateTopic(ctxT(t, 30*time.Second), "zzz", TopicConfig{Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		if tp == nil || tp.Name != "zzz" {
			t.Fatalf("CreateTopic(zzz) returned %+v", tp)
		}
	})
}

// A follower's proposal is committed while the follower cannot hear the
// leader; by the time it can, the log holding the proposal is compacted
// and the follower installs a snapshot. The proposal was applied (once):
// its caller is answered from the snapshot's state, not left to wait for
// its ctx while every retry is skipped as a duplicate.
func TestProposalAppliedInSnapshotAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, []uint64{1, 2, 3}, false, func(cfg *Config) { cfg.SnapshotEntries = 10 })
		for _, id := range c.peers {
			c.start(id)
		}
		l := c.topicT()
		var f uint64
		for _, id := range c.peers {
			if id != l {
				f = id
				break
			}
		}
		c.net.SetLink(l, f, transport.LinkFaults{Drop: 1}) // f hears nothing from the leader
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			done <- c.nodes[f].CommitOffset(ctxT(t, 60*time.Second), "g", "t", 0, 7)
		}()
		c.waitFor("offset committed on the leader", 50, func() bool {
			o, ok := c.nodes[l].CommittedOffset("g", "t", 0)
			return ok && o == 7
		})
		for i := range 40 {
			if err := c.nodes[l].CommitOffset(ctxT(t, 10*time.Second), "h", "t", 0, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		c.net.SetLink(l, f, transport.LinkFaults{})
		c.waitFor("follower caught up", 100, func() bool {
			o, ok := c.nodes[f].CommittedOffset("h", "t", 0)
			return ok && o == 39
		})
		caughtUp := time.Now()
		err := <-done
		t.Logf("CommitOffset on node %d returned %v after %v; follower caught up after %v",
			f, err, time.Since(start), caughtUp.Sub(start))
		if err != nil {
			t.Fatalf("CommitOffset, applied at once on the leader, failed: %v", err)
		}
	})
}

// Leadership transfer (MsgTimeoutNow) lets the transferee win votes from
// followers that heard from the old leader within the election timeout:
// the lease argument does not hold while a transfer runs. With the links
// to the old leader slow (but within the lease's delivery assumption,
// half an election timeout), a DeleteTopic commits under the new leader;
// the old one must not answer Topic from its lease then.
func TestNoLeaseReadDuringResign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		delay := 2 * c.nodes[l].cfg.TickInterval // under ElectionTicks/2 ticks
		for _, id := range c.peers {
			if id != l {
				c.net.SetLink(id, l, transport.LinkFaults{Delay: delay})
			}
		}
		time.Sleep(delay) // acks now arrive late, as the assumption allows
		go func() { _ = c.nodes[l].Resign(ctxT(t, 10*time.Second)) }()
		var nl uint64
		for i := 0; ; i++ {
			if i == 1000 {
				t.Fatal("no new leader")
			}
			time.Sleep(time.Millisecond)
			for id, n := range c.nodes {
				if id != l && n.Controller() != 0 && n.Controller() != l && n.Controller() == id {
					nl = id
				}
			}
			if nl != 0 {
				break
			}
		}
		var f uint64
		for _, id := range c.peers {
			if id != l && id != nl {
				f = id
			}
		}
		if err := c.nodes[f].DeleteTopic(ctxT(t, 10*time.Second), "t"); err != nil {
			t.Fatal(err)
		}
		old := c.nodes[l]
		t.Logf("old leader %d: controller %d, lease valid %v", l, old.Controller(), old.leaseValid())
		if tp, err := old.Topic(ctxT(t, 10*time.Second), "t"); err == nil {
			t.Fatalf("DeleteTopic returned on node %d (leader now %d), yet old leader %d answers Topic from its lease: %+v", f, nl, l, tp.Name)
		}
		c.net.Heal()
	})
}
