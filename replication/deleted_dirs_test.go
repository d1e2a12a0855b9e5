package replication

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// failCreateFS fails the creation of files whose name holds match.
type failCreateFS struct {
	wal.FS
	match string
}

func (f *failCreateFS) Create(name string) (wal.File, error) {
	if strings.Contains(name, f.match) {
		return nil, errors.New("create refused by the test")
	}
	return f.FS.Create(name)
}

// A replica whose open failed has no entry in its Manager, but its
// directory is there: deleting the topic removes that directory too, at
// once, not at the node's next start.
func TestDeleteTopicRemovesDirsOfReplicasNeverOpened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, func(id uint64, cfg *Config) { cfg.FS = &failCreateFS{FS: cfg.FS, match: "/bad-"} })
		c.createTopic("good", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.nodes[1].meta.CreateTopic(ctx, "bad", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3}); err != nil {
			t.Fatal(err)
		}
		dirs := func(id uint64) (bad, good int) {
			names, _ := c.fs[id].ReadDir("/data")
			for _, n := range names {
				switch {
				case strings.HasPrefix(n, "bad-"):
					bad++
				case strings.HasPrefix(n, "good-"):
					good++
				}
			}
			return bad, good
		}
		c.waitFor("every node tried to open its replica of bad", 30*time.Second, func() bool {
			for _, id := range c.ids {
				if bad, _ := dirs(id); bad == 0 {
					return false
				}
			}
			return true
		})
		if err := c.nodes[1].meta.DeleteTopic(ctx, "bad"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("the directories of bad removed", 30*time.Second, func() bool {
			for _, id := range c.ids {
				if bad, good := dirs(id); bad != 0 || good != 1 {
					return false
				}
			}
			return true
		})
	})
}
