package meta

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestClusterSnapshotCatchUp: a node down while the log is compacted past
// its last index catches up from a snapshot, and every node ends with a
// byte-identical state.
func TestClusterSnapshotCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, []uint64{1, 2, 3}, true, func(cfg *Config) { cfg.SnapshotEntries = 8 })
		for _, id := range c.peers {
			c.start(id)
		}
		l := c.leader()
		c.registered()
		lagger := uint64(1)
		if lagger == l {
			lagger = 2
		}
		c.stop(lagger)
		for i := range 30 {
			if _, err := c.nodes[l].CreateTopic(ctxT(t, 10*time.Second), fmt.Sprint("t", i), TopicConfig{Partitions: 2, ReplicationFactor: 2}); err != nil {
				t.Fatal(err)
			}
			if err := c.nodes[l].CommitOffset(ctxT(t, 10*time.Second), "g", fmt.Sprint("t", i), 1, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		c.waitFor("leader log compacted", 50, func() bool {
			first, _ := c.nodes[l].st.FirstIndex()
			return first >= 20
		})
		w := c.start(lagger).Watch()
		defer w.Close()
		c.waitFor("lagger caught up", 200, func() bool {
			_, ok := c.nodes[lagger].State().Topic("t29")
			return ok
		})
		// The restart replays the lagger's own log first, then the
		// snapshot from the leader replaces its state: watchers get a resync.
		for {
			e, ok := w.TryNext()
			if !ok {
				t.Fatal("no resync event: the lagger did not install a snapshot")
			}
			if e.Type == EventResync {
				break
			}
		}
		c.converged("snapshot catch-up")
	})
}
