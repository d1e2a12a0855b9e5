package replication

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// A follower's truncation keeps its producer snapshot, cut at the
// truncation (cutSnapshot). Were it removed, a crash before the next
// snapshot (snapshotEvery more bytes recorded) would leave the rebuild to
// the log's last rebuildBytes (4 MiB): a producer's batch older than that
// would be forgotten, and once the replica leads, a retry of it written a
// second time.
//
// Scenario: G's batch B, then 5 MiB of the leader L's own batches, all
// committed. L writes x (AcksLeader) that reaches F only; leadership
// moves to G, whose log lacks x: F truncates x.
// F crashes, restarts, catches up, rejoins the ISR and becomes leader.
// A retry of B (the same bytes, as G's producer resends them) reaches F.
func TestDedupSurvivesTruncationThenCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, senders := newCutCluster(t, time.Minute) // nobody is shrunk out while the scenario runs
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Second)
		defer cancel()
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 2})
		l := c.leader("t", 0)
		part, _ := c.nodes[l].meta.State().Partition("t", 0)
		var f, g uint64
		for _, id := range part.Replicas {
			if id != l {
				if f == 0 {
					f = id
				} else {
					g = id
				}
			}
		}

		// B: G's batch, committed at offset 0.
		if base, _, err := c.nodes[g].rep.Append(ctx, "t", 0, rec("B"), AcksAll); err != nil || base != 0 {
			t.Fatalf("append B via G: %d, %v", base, err)
		}
		// 5 MiB of L's own batches after it.
		big := bytes.Repeat([]byte("y"), 100<<10)
		for i := range 50 {
			if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, []log.Record{{Value: big}}, AcksAll); err != nil {
				t.Fatalf("append big %d: %v", i, err)
			}
		}
		c.converged("t", 0)
		rawB, err := replicaOf(t, c, l).log.ReadBatches(nil, 0, 1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := log.SplitBatch(rawB)
		if err != nil {
			t.Fatal(err)
		}
		rawB = slices.Clone([]byte(b))

		// x reaches F only.
		senders[l].set(g)
		rf := replicaOf(t, c, f)
		endBefore := rf.log.LogEndOffset()
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil {
			t.Fatal(err)
		}
		c.waitFor("F holds x", 30*time.Second, func() bool { return rf.log.LogEndOffset() == endBefore+1 })

		// G leads; F truncates x.
		if err := c.nodes[f].meta.SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := c.nodes[l].meta.SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		senders[l].set()
		c.waitFor("G leads", 60*time.Second, func() bool { return c.leader("t", 0) == g })
		c.waitFor("F truncated x", 60*time.Second, func() bool { return rf.log.LogEndOffset() == endBefore })
		snap := filepath.Join(rf.dir, producersFile)
		if _, err := c.fs[f].Stat(snap); err != nil {
			t.Fatalf("F has no producer snapshot after its truncation: %v", err)
		}

		// F crashes and comes back, catches up, rejoins the ISR.
		c.fs[f].(*wal.MemFS).Crash(wal.CrashOptions{})
		c.stopCrashed(f)
		c.start(f)
		c.waitFor("F registered", 60*time.Second, func() bool { return c.nodes[f].rep.isRegistered() })
		if err := c.nodes[f].meta.SetUnhealthy(ctx, false); err != nil {
			t.Fatal(err)
		}
		c.waitFor("F back in the ISR", 120*time.Second, func() bool {
			p, ok := c.nodes[g].meta.State().Partition("t", 0)
			return ok && slices.Contains(p.ISR, f)
		})
		rf = replicaOf(t, c, f)
		rf.mu.Lock()
		ps := rf.mu.producers[int64(g)]
		known := ps != nil && slices.ContainsFunc(ps.batches, func(sb seqBatch) bool { return sb.baseOffset == 0 })
		rf.mu.Unlock()
		t.Logf("F=%d rebuilt its producer table: G's batch B at 0 known: %v", f, known)

		// F leads.
		if err := c.nodes[g].meta.SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		c.waitFor("F leads", 60*time.Second, func() bool { return leaderReady(c, f, mustEpoch(c, f)) && c.leader("t", 0) == f })

		// G's producer resends B (the same bytes).
		rf.mu.Lock()
		epoch := rf.mu.epoch
		rf.mu.Unlock()
		endLead := rf.log.LogEndOffset()
		req := &appendReq{batch: slices.Clone(rawB), pid: b.ProducerID(), pepoch: b.ProducerEpoch(), firstSeq: b.BaseSequence(),
			lastSeq: lastSeqOf(b.BaseSequence(), b.Count()), count: b.Count(), acks: AcksLeader, epoch: epoch,
			from: g, reqID: 1 << 40, attempt: 7}
		rf.enqueue(req)
		c.waitFor("F's round done", 10*time.Second, func() bool {
			rf.mu.Lock()
			defer rf.mu.Unlock()
			return len(rf.mu.queue) == 0 && len(rf.mu.inflight) == 0
		})
		recs, err := rf.log.Read(0, rf.log.LogEndOffset(), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range recs {
			if string(r.Value) == "B" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("after F's truncation, crash and restart, a retry of G's batch B was written again: B %d times in F's log (end %d before the retry, %d after)",
				n, endLead, rf.log.LogEndOffset())
		}
	})
}

// mustEpoch is node id's replica's epoch of t/0.
func mustEpoch(c *tcluster, id uint64) int32 {
	p, _ := c.nodes[id].meta.State().Partition("t", 0)
	return p.LeaderEpoch
}
