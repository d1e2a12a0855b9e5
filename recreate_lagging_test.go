package replog_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/transport"
)

// DeleteTopic + CreateTopic of the same name returned; an Append through a
// node that holds no replica and whose metadata lags (so DeleteTopic did
// not wait for it) must land in the new topic ("usable at once through
// every node"), not fail: the old leader, whose replica is dropped
// already, answers that the topic is gone, at once.
func TestAppendViaLaggingNonReplicaAfterRecreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		ctx := context.Background()
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		requireEngine(t, lc.Node(1), "t")
		ti, err := lc.Node(1).Topic(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		x := ti.Partitions[0].Leader
		var z, caller replog.NodeID
		for _, c := range lc.Nodes() {
			switch {
			case c.ID() == x:
			case z == 0:
				z = c.ID()
			default:
				caller = c.ID()
			}
		}
		requireEngine(t, lc.Node(z), "t") // z has a producer for the old topic
		for _, c := range lc.Nodes() {
			if c.ID() != z {
				lc.Network().SetLink(uint64(c.ID()), uint64(z), transport.LinkFaults{Delay: 300 * time.Millisecond})
			}
		}
		if err := lc.Node(caller).DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		// Same placement is likely with RF 1 on the least-loaded node; any
		// placement shows the issue as long as z holds no replica.
		if err := lc.Node(caller).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 3}); err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = lc.Node(z).Append(actx, "t", 0, []replog.Record{{Value: []byte("new")}})
		lc.Network().Heal()
		if err != nil {
			t.Fatalf("Append via lagging node %d after DeleteTopic+CreateTopic returned: %v", z, err)
		}
	})
}
