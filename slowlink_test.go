package replog_test

import (
	"context"
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
		pi := leaderOf(t, lc.Node(1), "t", 0)
		l := pi.Leader
		var f replog.NodeID
		for _, r := range pi.Replicas {
			if r != l {
				f = r
			}
		}
		requireEngine(t, lc.Node(l), "t")
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
		pi := leaderOf(t, lc.Node(1), "t", 0)
		l := pi.Leader
		var f replog.NodeID
		for _, r := range pi.Replicas {
			if r != l {
				f = r
			}
		}
		requireEngine(t, lc.Node(l), "t")
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
		pi := leaderOf(t, lc.Node(1), "t", 0)
		l := pi.Leader
		var f replog.NodeID
		for _, r := range pi.Replicas {
			if r != l {
				f = r
				break
			}
		}
		requireEngine(t, lc.Node(l), "t")
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
