package replog_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/replog/replog"
)

// A leader cut off from the controller stops acknowledging writes that
// rest on it alone, once it is out of touch for SessionTimeout: AcksLeader
// appends, and AcksAll ones with the ISR down to itself (replication factor
// 1). Here the controller deletes the topic meanwhile, so a write it
// acknowledged would vanish. Once it hears from the cluster again, an
// append through it reaches the topic as the cluster knows it.
func TestIsolatedLeaderStopsAcknowledgingSoloWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		ctx := context.Background()
		ctrl := replog.ControllerOf(lc.Node(1))
		var x, caller replog.NodeID
		for _, id := range []replog.NodeID{1, 2, 3} {
			switch {
			case id == ctrl:
				caller = id
			case x == 0:
				x = id
			}
		}
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3, ReplicationFactor: 1})
		ti, err := lc.Node(x).Topic(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		part := int32(-1)
		for _, p := range ti.Partitions {
			if p.Leader == x {
				part = p.Partition
			}
		}
		if part < 0 {
			t.Fatalf("node %d leads no partition of %+v", x, ti)
		}
		if _, err := lc.Node(x).Append(ctx, "t", part, recs("old", 1)); err != nil {
			t.Fatal(err)
		}
		lc.Network().Isolate(uint64(x))
		dctx, cancel := context.WithTimeout(ctx, 20*testSession)
		defer cancel()
		if err := lc.Node(caller).DeleteTopic(dctx, "t"); err != nil {
			t.Fatal(err)
		}
		for _, acks := range []replog.Acks{replog.AcksAll, replog.AcksLeader} {
			actx, cancel := context.WithTimeout(ctx, 4*testSession)
			res, err := lc.Node(x).Append(actx, "t", part, recs("after-delete", 1), replog.WithAcks(acks))
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("acks %v: node %d, cut off for longer than a session, acknowledged an append into the deleted topic (%+v, %v)", acks, x, res, err)
			}
		}
		lc.Network().Heal()
		settle()
		actx, cancel3 := context.WithTimeout(ctx, 20*testSession)
		defer cancel3()
		if _, err := lc.Node(x).Append(actx, "t", part, recs("healed", 1)); !errors.Is(err, replog.ErrUnknownTopic) {
			t.Fatalf("append through node %d after the heal: %v, want ErrUnknownTopic", x, err)
		}
	})
}
