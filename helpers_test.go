package replog_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
)

// testSession is the SessionTimeout of test clusters. Tests run under
// testing/synctest, so it costs fake time only.
const testSession = 500 * time.Millisecond

// newLocal starts an n-node LocalCluster with testSession and closes it at
// the end of the test.
func newLocal(t *testing.T, n int, opts ...replog.LocalOption) *replog.LocalCluster {
	t.Helper()
	opts = append([]replog.LocalOption{replog.WithConfig(func(c *replog.Config) {
		c.SessionTimeout = testSession
	})}, opts...)
	lc, err := replog.NewLocalCluster(n, opts...)
	if err != nil {
		t.Fatalf("NewLocalCluster(%d): %v", n, err)
	}
	t.Cleanup(func() {
		if err := lc.Close(); err != nil {
			t.Errorf("close local cluster: %v", err)
		}
	})
	return lc
}

// createTopic creates a topic through node 1.
func createTopic(t *testing.T, lc *replog.LocalCluster, name string, cfg replog.TopicConfig) {
	t.Helper()
	if err := lc.Nodes()[0].CreateTopic(context.Background(), name, cfg); err != nil {
		t.Fatalf("CreateTopic(%q): %v", name, err)
	}
}

// requireEngine appends a probe record to partition 0 of topic through c and
// fails the test if the append does not succeed.
func requireEngine(t *testing.T, c *replog.Cluster, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Append(ctx, topic, 0, []replog.Record{{Value: []byte("probe")}})
	if err != nil {
		t.Fatalf("probe append: %v", err)
	}
}

// readN reads records [from, from+n) of a partition through c, waiting for
// them to be committed and known to c's replica.
func readN(t *testing.T, c *replog.Cluster, topic string, p int32, from int64, n int) []replog.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []replog.Record
	for off := from; len(out) < n; {
		res, err := c.Read(ctx, topic, p, off, replog.MaxWait(time.Second))
		if err != nil {
			t.Fatalf("node %d: read %s/%d at %d: %v (have %d of %d)", c.ID(), topic, p, off, err, len(out), n)
		}
		for _, r := range res.Records {
			if r.Offset >= from+int64(n) {
				break
			}
			if r.Offset != off {
				t.Fatalf("node %d: read at %d returned offset %d", c.ID(), off, r.Offset)
			}
			out = append(out, r)
			off++
		}
	}
	return out
}

// values returns the records' values as strings.
func values(recs []replog.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// leaderOf returns the partition's leader as node c sees it, lease-checked.
func leaderOf(t *testing.T, c *replog.Cluster, topic string, p int32) replog.PartitionInfo {
	t.Helper()
	ti, err := c.Topic(context.Background(), topic)
	if err != nil {
		t.Fatalf("Topic(%q): %v", topic, err)
	}
	return ti.Partitions[p]
}

// recs makes n records with values prefix-0, prefix-1, ...
func recs(prefix string, n int) []replog.Record {
	out := make([]replog.Record, n)
	for i := range out {
		out[i] = replog.Record{Key: []byte(prefix), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return out
}

// otherThan returns the running nodes but id.
func otherThan(lc *replog.LocalCluster, id replog.NodeID) []*replog.Cluster {
	return slices.DeleteFunc(lc.Nodes(), func(c *replog.Cluster) bool { return c.ID() == id })
}

// settle lets 3 × testSession of fake time pass (in a synctest bubble) and
// waits until every goroutine is idle: sessions of stopped nodes expire,
// metadata changes reach every node. It is the passage of time a test is
// about, on the fake clock, not a guess at how long something takes.
func settle() {
	time.Sleep(3 * testSession)
	synctest.Wait()
}
