package replog_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/wal"
)

func TestIsolatedLeaderCannotAcknowledge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		p := leaderOf(t, lc.Node(1), "t", 0)
		lc.Network().Isolate(p.Leader)
		ctx, cancel := context.WithTimeout(context.Background(), 4*testSession)
		defer cancel()
		res, err := lc.Node(p.Leader).Append(ctx, "t", 0, recs("cut-off", 1))
		if err == nil {
			t.Fatalf("isolated leader %d acknowledged an AcksAll append at %+v", p.Leader, res)
		}
		t.Logf("isolated leader's append: %v", err)
		// The majority side carries on.
		lc.Network().Heal()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 10*testSession)
		defer cancel2()
		if _, err := otherThan(lc, p.Leader)[0].Append(ctx2, "t", 0, recs("healed", 1)); err != nil {
			t.Fatalf("append after heal: %v", err)
		}
	})
}

func TestStalledSyncMovesLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const syncTimeout = 200 * time.Millisecond
		lc := newLocal(t, 3,
			replog.WithConfig(func(c *replog.Config) { c.SyncTimeout = syncTimeout }),
			replog.WithFS(func(replog.NodeID) wal.FS { return wal.NewStallFS(wal.NewMemFS()) }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		p := leaderOf(t, lc.Node(1), "t", 0)
		stall := lc.FS(p.Leader).(*wal.StallFS)
		stall.Stall()
		ctx, cancel := context.WithTimeout(context.Background(), 10*testSession)
		defer cancel()
		_, err := lc.Node(p.Leader).Append(ctx, "t", 0, recs("stalled", 1))
		if !errors.Is(err, replog.ErrStorageStalled) && !errors.Is(err, replog.ErrNotLeader) {
			t.Fatalf("append to a leader whose sync stalls = %v, want ErrStorageStalled", err)
		}
		// The stalled node reports itself unhealthy and the controller moves
		// the partition to another replica, which takes appends. (Appends
		// forwarded to the stalled leader meanwhile wait for the new leader.)
		settle()
		other := otherThan(lc, p.Leader)[0]
		if _, err := other.Append(ctx, "t", 0, recs("moved", 1)); err != nil {
			t.Fatalf("append after the leader's storage stalled: %v", err)
		}
		if now := leaderOf(t, other, "t", 0); now.Leader == p.Leader {
			t.Fatalf("partition still led by the stalled node: %+v", now)
		}
		stall.Release()
		// Closing reports the failed log of the stalled node.
		if err := lc.Close(); err != nil && !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("close: %v", err)
		}
	})
}

// A leader whose storage fails (EIO on every write and sync, not a
// stall) fails its appends with ErrStorageStalled ("stalled or failed"),
// like a stall: the error matches the documented sentinel, and an append
// through another node may instead succeed once leadership moved.
func TestFailedStorageWriteIsStorageStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3,
			replog.WithFS(func(replog.NodeID) wal.FS { return wal.NewFaultFS(wal.NewMemFS()) }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		p := leaderOf(t, lc.Node(1), "t", 0)
		lc.FS(p.Leader).(*wal.FaultFS).Inject(wal.Fault{Ops: wal.OpWrite | wal.OpSync, Sticky: true})
		ctx, cancel := context.WithTimeout(context.Background(), 10*testSession)
		defer cancel()
		if _, err := lc.Node(p.Leader).Append(ctx, "t", 0, recs("eio", 1)); !errors.Is(err, replog.ErrStorageStalled) {
			t.Errorf("append to a leader whose writes fail: %v, want ErrStorageStalled", err)
		}
		other := otherThan(lc, p.Leader)[0]
		if _, err := other.Append(ctx, "t", 0, recs("moved", 1)); err != nil && !errors.Is(err, replog.ErrStorageStalled) {
			t.Errorf("append through node %d while leader %d's writes fail: %v", other.ID(), p.Leader, err)
		}
		// The failed log's Close reports the failure: stop the node here,
		// not in the cluster's clean-up, which wants clean closes.
		if err := lc.Stop(p.Leader); err != nil {
			t.Logf("stop of node %d: %v", p.Leader, err)
		}
	})
}
