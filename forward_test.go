package replog_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/transport"
)

// A node restarts while a Read it forwarded waits on the leader. The
// leader's late answer to that Read (another partition's records) must not
// answer a forwarded Read of the restarted node: had its request IDs
// started where the previous run's did, its first Reads would take the old
// Read's ID and that answer.
func TestRestartedNodeIgnoresStaleReadAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 6, ReplicationFactor: 1})
		settle() // every leader ready: the old read waits on its leader, not in a retry
		ti, err := lc.Node(1).Topic(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		// A reader node and two partitions both led by another node L.
		var reader, leader replog.NodeID
		var p, q int32 = -1, -1
	search:
		for _, a := range []replog.NodeID{3, 2, 1} {
			for i := range ti.Partitions {
				for j := range ti.Partitions {
					pi, pj := ti.Partitions[i], ti.Partitions[j]
					if i != j && pi.Leader == pj.Leader && pi.Leader != a {
						reader, leader, p, q = a, pi.Leader, int32(i), int32(j)
						break search
					}
				}
			}
		}
		if p < 0 {
			t.Fatalf("no two partitions with one leader: %+v", ti.Partitions)
		}
		t.Logf("reader %d, leader %d, partitions %d (old read) and %d (new read)", reader, leader, p, q)

		// The old incarnation's forwarded read of p, waiting on the leader.
		oldDone := make(chan struct{})
		go func() {
			defer close(oldDone)
			_, _ = lc.Node(reader).Read(context.Background(), "t", p, 0, replog.MaxWait(20*time.Second))
		}()
		synctest.Wait()
		if err := lc.Stop(reader); err != nil {
			t.Fatal(err)
		}
		<-oldDone
		if err := lc.Restart(reader); err != nil {
			t.Fatal(err)
		}

		// The new incarnation's forwarded reads of q: a few, so that one of
		// them takes the old read's request ID whatever retries the old
		// one made.
		type result struct {
			res replog.ReadResult
			err error
		}
		const reads = 8
		newRes := make(chan result, reads)
		for range reads {
			go func() {
				res, err := lc.Node(reader).Read(context.Background(), "t", q, 0, replog.MaxWait(20*time.Second))
				newRes <- result{res, err}
			}()
		}
		synctest.Wait()
		if _, err := lc.Node(leader).Append(context.Background(), "t", p, []replog.Record{{Value: []byte("written to p")}}); err != nil {
			t.Fatal(err)
		}
		for range reads {
			r := <-newRes
			if r.err != nil {
				t.Fatalf("read of q: %v", r.err)
			}
			for _, rec := range r.res.Records {
				t.Errorf("read of partition %d returned %q at offset %d, a record of partition %d (hw %d)",
					q, rec.Value, rec.Offset, p, r.res.HighWatermark)
			}
		}
	})
}

// A node restarts while an AcksAll Append it forwarded waits on the leader
// for the high watermark. The leader's answer to the old Append (another
// batch's offsets) must not answer the restarted node's first Append, which,
// had its request IDs started where the previous run's did, would have the
// old one's request ID and attempt.
func TestRestartedNodeIgnoresStaleAppendAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) { c.SessionTimeout = 10 * time.Second }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3, ReplicationFactor: 2, MinInSyncReplicas: 2})
		ti, err := lc.Node(1).Topic(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		ctrl := replog.ControllerOf(lc.Node(1))
		// A partition of replicas {l, ctrl}; the appender is the third
		// node. The leader's messages to the appender are slow.
		var a, l replog.NodeID
		var p int32 = -1
		for i, pi := range ti.Partitions {
			if pi.Leader != ctrl && slices.Contains(pi.Replicas, ctrl) {
				for _, id := range []replog.NodeID{1, 2, 3} {
					if !slices.Contains(pi.Replicas, id) {
						a, l, p = id, pi.Leader, int32(i)
					}
				}
			}
		}
		if p < 0 {
			t.Fatalf("no partition led by a non-controller with the controller as follower: %+v (controller %d)", ti.Partitions, ctrl)
		}
		f := ctrl
		t.Logf("appender %d, leader %d, follower %d, partition %d", a, l, f, p)
		requireEngineP(t, lc.Node(l), "t", p) // offset 0

		// The leader's answers reach the appender late.
		lc.Network().SetLink(l, a, transport.LinkFaults{Delay: 800 * time.Millisecond})
		go func() {
			_, _ = lc.Node(a).Append(context.Background(), "t", p, []replog.Record{{Value: []byte("old")}})
		}()
		synctest.Wait() // the old Append waits on the leader
		if err := lc.Stop(a); err != nil {
			t.Fatal(err)
		}
		restartAt := time.Now()
		if err := lc.Restart(a); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		t.Logf("restart took %v", start.Sub(restartAt))
		res, err := lc.Node(a).Append(context.Background(), "t", p, []replog.Record{{Value: []byte("new")}})
		if err != nil {
			ti, _ := lc.Node(l).Topic(context.Background(), "t")
			t.Fatalf("after %v: %v; partition %+v", time.Since(start), err, ti.Partitions[p])
		}
		lc.Network().SetLink(l, a, transport.LinkFaults{})
		got, err := lc.Node(l).Read(context.Background(), "t", p, res.BaseOffset, replog.MaxRecords(1))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Records) != 1 || string(got.Records[0].Value) != "new" {
			t.Fatalf("Append of %q returned offset %d, which holds %q", "new", res.BaseOffset, values(got.Records))
		}
	})
}

// requireEngineP appends a probe record to partition p of topic through c.
func requireEngineP(t *testing.T, c *replog.Cluster, topic string, p int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Append(ctx, topic, p, []replog.Record{{Value: []byte("probe")}}); err != nil {
		t.Fatalf("probe append: %v", err)
	}
}

// A forwarded Read with the largest MaxWait returns no records after the
// leader's 30 s cap, as MaxWait's doc says. (MaxWait plus the resend
// delay overflowed: the reader re-sent the read at every retry delay, each
// starting another wait on the leader, until its ctx ended.)
func TestForwardedReadWithHugeMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3, ReplicationFactor: 1})
		ti, err := lc.Node(1).Topic(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		var reader replog.NodeID = 1
		for reader == ti.Partitions[0].Leader {
			reader++
		}
		settle()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		res, err := lc.Node(reader).Read(ctx, "t", 0, 0, replog.MaxWait(math.MaxInt64))
		if err != nil || len(res.Records) != 0 {
			t.Fatalf("Read with MaxWait(MaxInt64) of an empty partition: %d records, %v; want none, after 30 s", len(res.Records), err)
		}
	})
}
