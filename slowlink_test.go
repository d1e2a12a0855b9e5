package replog_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/transport"
)

// A follower whose answers take longer to come back than four of its
// leader's ticks (the base resend timeout) still counts: the leader waits
// longer at each resend that made no progress, and then as long as twice
// the round trips it measures. (With a fixed timeout it resent before any
// answer came back and ignored the answers to the pushes it gave up: the
// high watermark never moved.) Here a steady delay of 300 ms, where
// testSession's ticks of 62.5 ms resend after 250 ms.
func TestSlowFollowerLinkCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 2, MinInSyncReplicas: 2})
		l, f := leaderAndFollower(t, lc)
		lc.Network().SetLink(l, f, transport.LinkFaults{Delay: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := lc.Node(l).Append(ctx, "t", 0, []replog.Record{{Value: []byte("slow")}})
		if err != nil {
			ti, _ := lc.Node(l).Topic(context.Background(), "t")
			t.Fatalf("AcksAll append over a link with 300 ms of delay: after %v: %v; partition %+v",
				time.Since(start), err, ti.Partitions[0])
		}
		t.Logf("took %v", time.Since(start))
	})
}

// The same with the default SessionTimeout (2 s: ticks of 250 ms, resend
// after 1 s) and a follower 1.2 s away.
func TestSlowFollowerLinkCommitsDefaultSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc, err := replog.NewLocalCluster(3)
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		if err := lc.Node(1).CreateTopic(context.Background(), "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 2}); err != nil {
			t.Fatal(err)
		}
		l, f := leaderAndFollower(t, lc)
		lc.Network().SetLink(l, f, transport.LinkFaults{Delay: 1200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		_, err = lc.Node(l).Append(ctx, "t", 0, []replog.Record{{Value: []byte("slow")}})
		ti, _ := lc.Node(l).Topic(context.Background(), "t")
		if err != nil {
			t.Fatalf("AcksAll append, follower 1.2 s away: after %v: %v; partition %+v", time.Since(start), err, ti.Partitions[0])
		}
	})
}

// RF 3: a follower 300 ms away stays in the ISR (it was shrunk out for
// good, and did not even get the records).
func TestSlowFollowerLinkStaysInSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		l, f := leaderAndFollower(t, lc)
		lc.Network().SetLink(l, f, transport.LinkFaults{Delay: 300 * time.Millisecond})
		for i := 0; i < 30; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := lc.Node(l).Append(ctx, "t", 0, []replog.Record{{Value: []byte("x")}}); err != nil {
				t.Fatal(err)
			}
			cancel()
			time.Sleep(time.Second)
		}
		ti, _ := lc.Node(l).Topic(context.Background(), "t")
		res, err := lc.Node(f).Read(context.Background(), "t", 0, 0, replog.MaxRecords(100))
		t.Logf("after 30 s: partition %+v; follower %d reads %d records (err %v), hw %d", ti.Partitions[0], f, len(res.Records), err, res.HighWatermark)
		for _, id := range ti.Partitions[0].ISR {
			if id == f {
				return
			}
		}
		t.Errorf("follower %d, 300 ms from its leader, is out of the ISR for good: %v", f, ti.Partitions[0].ISR)
	})
}

// A follower cut off for a while (its pushes lost, not slow) is resent to
// as often as before once the network heals, and rejoins the ISR within
// about ReplicaLagTime: resends that hear nothing must not lengthen the
// leader's resend timeout (they did, up to 8 x ReplicaLagTime). session
// is the nodes' SessionTimeout (= ReplicaLagTime); away is how long the
// follower is cut off.
func rejoinAfterHeal(t *testing.T, session, away time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) { c.SessionTimeout = session }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 1})
		l, f := leaderAndFollower(t, lc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		lc.Network().Isolate(f)
		// Appends while f is away: the leader's pushes to it are lost.
		for start := time.Now(); time.Since(start) < away; time.Sleep(away / 40) {
			if _, err := lc.Node(l).Append(ctx, "t", 0, recs("away", 1), replog.WithAcks(replog.AcksLeader)); err != nil {
				t.Fatal(err)
			}
		}
		lc.Network().Heal()
		healed := time.Now()
		for {
			ti, err := lc.Node(l).Topic(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(ti.Partitions[0].ISR, f) {
				break
			}
			if time.Since(healed) > 5*time.Minute {
				t.Fatalf("follower %d not back in the ISR 5 minutes after the heal: %+v", f, ti.Partitions[0])
			}
			time.Sleep(session / 20)
		}
		took := time.Since(healed)
		t.Logf("follower %d back in the ISR %v after the heal (ReplicaLagTime %v)", f, took, session)
		if took > 2*session {
			t.Errorf("follower %d took %v after the heal to get pushes and rejoin the ISR, ReplicaLagTime %v: "+
				"its leader resent less and less often while the pushes were lost", f, took, session)
		}
	})
}

func TestIsolatedFollowerRejoinsPromptly(t *testing.T) {
	rejoinAfterHeal(t, testSession, 10*time.Second)
}

func TestIsolatedFollowerRejoinsPromptlyDefaultSession(t *testing.T) {
	rejoinAfterHeal(t, 2*time.Second, 48*time.Second)
}

// leaderAndFollower returns the leader of t/0 (its replication engine
// ready) and a follower of it.
func leaderAndFollower(t *testing.T, lc *replog.LocalCluster) (l, f replog.NodeID) {
	t.Helper()
	pi := leaderOf(t, lc.Node(1), "t", 0)
	l = pi.Leader
	requireEngine(t, lc.Node(l), "t")
	for _, r := range pi.Replicas {
		if r != l {
			return l, r
		}
	}
	t.Fatalf("t/0 has no follower: %+v", pi)
	return 0, 0
}
