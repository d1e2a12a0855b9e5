package replog_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/replog/replog"
	"github.com/replog/replog/transport"
)

// Read's doc: on ErrOffsetOutOfRange "the result then holds the answering
// replica's HighWatermark and LogStartOffset", a negative offset too, on
// every node (the leader's and the followers' replicas).
func TestNegativeOffsetBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		requireEngine(t, lc.Node(1), "t")
		readN(t, lc.Node(1), "t", 0, 0, 1)
		settle()
		for _, c := range lc.Nodes() {
			res, err := c.Read(context.Background(), "t", 0, -1)
			if !errors.Is(err, replog.ErrOffsetOutOfRange) {
				t.Fatalf("Read(-1) on node %d = %v", c.ID(), err)
			}
			if res.HighWatermark != 1 {
				t.Errorf("Read(-1) on node %d: HighWatermark %d LogStartOffset %d; want the replica's (HW 1)", c.ID(), res.HighWatermark, res.LogStartOffset)
			}
		}
		if _, err := lc.Node(1).Read(context.Background(), "nope", 0, -1); !errors.Is(err, replog.ErrUnknownTopic) {
			t.Errorf("Read(-1) of an unknown topic = %v, want ErrUnknownTopic", err)
		}
	})
}

// A host that closes its MemNetwork (or its tcp.Transport) before the
// Cluster that owns it: nothing went wrong, and Close says so.
func TestCloseAfterTransportClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		c, err := replog.Open(replog.Config{ID: 1, Peers: []replog.NodeID{1}, Transport: net.Endpoint(1)})
		if err != nil {
			t.Fatal(err)
		}
		net.Close()
		if err := c.Close(); err != nil {
			t.Errorf("Close after the host closed the network = %v", err)
		}
	})
}
