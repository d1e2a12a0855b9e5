package replication

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/replog/replog/meta"
)

// A forwarded append or read for a topic ID the leader's metadata deleted,
// arriving after the deletion's event dropped the replica (the usual case
// once DeleteTopic returned, since it waits for the replica nodes to apply
// it), is refused as for an unknown topic, at once, so that the sender
// looks the name up again; not parked as an orphan and answered "retry".
func TestForwardedCallAfterReplicaDroppedRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		taps := map[uint64]*answerTap{}
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			taps[id] = &answerTap{inner: cfg.Forward}
			cfg.Forward = taps[id]
		})
		topic := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		l := c.leader("t", 0)
		other := c.other(l)
		ctx := context.Background()
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("a"), AcksAll); err != nil {
			t.Fatal(err)
		}
		if err := c.nodes[other].meta.DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		m := c.nodes[l].rep
		synctest.Wait()
		if m.replica(pkey{topic.ID, 0}) != nil {
			t.Fatal("replica not dropped yet: premise does not hold")
		}
		out := forwardAppendAndRead(t, m, taps[l], other, topic.ID)
		synctest.Wait() // no time passes: the answers come at once
		for range 2 {
			select {
			case a := <-out:
				if a.code != codeUnknownTopic {
					t.Errorf("answer %+v: want code %d (unknown topic)", a, codeUnknownTopic)
				}
			default:
				t.Fatal("a forwarded call was not answered at once")
			}
		}
	})
}
