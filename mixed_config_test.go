package replog_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
)

// Nodes whose Config.MaxBatchBytes differ (a misconfiguration: every node
// needs the same): a batch the leader accepts that is larger than a
// follower's limit. The follower cannot take it; the leader must not
// resend it in a hot loop (it did: a follower answered "mismatch", and
// the leader matched again and resent at once, a core spinning for good;
// under synctest fake time then never advances and this test hangs). The
// follower leaves the ISR, and appends go on without it.
func TestMixedMaxBatchBytesNoHotLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) {
			if c.ID == 2 {
				c.MaxBatchBytes = 64 << 10
			}
		}))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if p := leaderOf(t, lc.Node(1), "t", 0); p.Leader != 1 {
			t.Skipf("leader is %d", p.Leader)
		}
		if _, err := lc.Node(1).Append(ctx, "t", 0, []replog.Record{{Value: make([]byte, 100<<10)}}); err != nil {
			t.Fatalf("100 KiB append: %v", err)
		}
		if _, err := lc.Node(1).Append(ctx, "t", 0, recs("small", 1)); err != nil {
			t.Fatalf("small append after it: %v", err)
		}
		for range 5 {
			settle()
		}
		if p := leaderOf(t, lc.Node(1), "t", 0); p.HighWatermark != 2 || slices.Contains(p.ISR, 2) {
			t.Errorf("leader's view %+v: want both appends committed, node 2 out of the ISR", p)
		}
	})
}
