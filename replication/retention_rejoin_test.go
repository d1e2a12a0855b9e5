package replication

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
)

// A follower whose log holds records of an older epoch that the new
// leader never had (written uncommitted by the old leader) must not keep
// them below the high watermark when it rejoins, even when retention on
// the new leader removed that older epoch's entry from its epoch cache.
// Scenario: L writes x/0..x/99 (epoch E, offsets 3..102, AcksLeader)
// that never leave it; leadership moves to Q (E+1), which writes b/..
// committed with R; retention on Q moves its log start to s, 3 < s < 103,
// and drops epoch E from Q's epoch cache. L then answers Q's probe with
// (E, 103). Q's EndOffsetForEpoch(E) answers (E, s) (the first cached
// epoch's start), so T = s is not below the log start; without a reset,
// L would truncate to s only and keep x/3..x/s-1 below its high
// watermark.
func TestRetentionRejoiningFollowerDropsUncommittedOlderEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, senders := newCutClusterWith(t, func(cfg *Config) { cfg.SegmentSize = 4 << 10 })
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Second)
		defer cancel()
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 2, RetentionBytes: 8 << 10})
		l := c.leader("t", 0)
		others := c.othersThan(l) // RF 3 of 3 nodes
		appendN(t, ctx, c, l, "a", 3)
		c.converged("t", 0)

		// x/0..x/99 reach L's log only: never committed.
		senders[l].set(others...)
		for i := range 100 {
			if base, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec(fmt.Sprintf("x/%d", i)), AcksLeader); err != nil || base != int64(3+i) {
				t.Fatalf("append x/%d via L: base %d, %v", i, base, err)
			}
		}
		if err := c.nodes[l].meta.SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		q := c.waitNewLeader(l)
		big := strings.Repeat("B", 1000)
		for i := range 60 {
			if _, _, err := c.nodes[q].rep.Append(ctx, "t", 0, rec(fmt.Sprintf("b/%d/%s", i, big)), AcksAll); err != nil {
				t.Fatalf("append b/%d via Q: %v", i, err)
			}
		}
		rq := replicaOf(t, c, q)
		c.waitFor("retention on Q", 300*time.Second, func() bool { return rq.log.LogStartOffset() > 3 })
		s := rq.log.LogStartOffset()
		t.Logf("Q=%d log start %d end %d epochs %v", q, s, rq.log.LogEndOffset(), rq.log.Epochs())
		if s >= 103 {
			t.Fatalf("retention moved Q's start to %d, past L's end: the scenario needs it below", s)
		}

		// L can talk again: it is matched and catches up.
		rl0 := replicaOf(t, c, l)
		t.Logf("before heal: L start %d end %d hw %d epochs %v", rl0.log.LogStartOffset(), rl0.log.LogEndOffset(), rl0.log.HighWatermark(), rl0.log.Epochs())
		senders[l].set()
		rl := replicaOf(t, c, l)
		end := rq.log.LogEndOffset()
		c.waitFor("L caught up", 120*time.Second, func() bool { return rl.log.HighWatermark() >= end })
		start, hw := rl.log.LogStartOffset(), rl.log.HighWatermark()
		t.Logf("L=%d start %d hw %d end %d epochs %v", l, start, hw, rl.log.LogEndOffset(), rl.log.Epochs())
		recs, err := rl.log.Read(start, hw, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if strings.HasPrefix(string(r.Value), "x/") {
				t.Fatalf("L (start %d, hw %d, epochs %v) holds the never-committed record %q at offset %d below its high watermark; the leader Q's log starts at %d",
					start, hw, rl.log.Epochs(), r.Value, r.Offset, s)
			}
		}
		// And a Read through L serves it.
		res, err := c.nodes[l].rep.Read(ctx, "t", 0, 3, ReadOptions{MaxRecords: 1})
		if err == nil && len(res.Records) > 0 && strings.HasPrefix(string(res.Records[0].Value), "x/") {
			t.Errorf("Read through L at 3 returned the never-committed %q", res.Records[0].Value)
		}
	})
}
