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

func withJournal(id uint64, cfg *Config) { cfg.Journal = true }

// With a journal per node, every node crashing at once (each loses what
// it did not sync) loses nothing acknowledged: the replicas' own logs
// were never synced per round, the journals were, and replay restores
// them.
func TestJournalCrashAllKeepsAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, withJournal)
		l, _ := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 20)
		for _, id := range c.ids {
			c.fs[id].(*wal.MemFS).Crash(wal.CrashOptions{})
			c.stopCrashed(id)
		}
		for _, id := range c.ids {
			c.start(id)
		}
		checkValues(t, values(c), names("a", 20))
		c.waitFor("the ISR regrows", 30*time.Second, func() bool {
			for _, id := range c.ids {
				part, ok := c.nodes[id].meta.State().Partition("t", 0)
				if !ok || part.Leader == 0 || len(part.ISR) < 2 {
					return false
				}
				tp, _ := c.nodes[id].meta.State().Topic("t")
				if r := c.nodes[part.Leader].rep.replica(pkey{tp.ID, 0}); r == nil || !r.leaderISRAtLeast(2) {
					return false
				}
			}
			return true
		})
		appendN(t, ctx, c, c.leader("t", 0), "b", 5)
		checkValues(t, values(c), append(names("a", 20), names("b", 5)...))
	})
}

// A topic deleted and created again under the same name on nodes with a
// journal starts empty: the journal never replays the old topic's records
// (its replicas' directories differ by topic ID, and deleted replicas are
// forgotten).
func TestJournalDeleteTopicThenCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, withJournal)
		old := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		appendN(t, ctx, c, c.leader("t", 0), "a", 5)
		c.deleteTopic(ctx, "t", old.ID)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		appendN(t, ctx, c, c.leader("t", 0), "b", 3)
		for _, id := range c.ids {
			c.fs[id].(*wal.MemFS).Crash(wal.CrashOptions{})
			c.stopCrashed(id)
		}
		for _, id := range c.ids {
			c.start(id)
		}
		checkValues(t, values(c), names("b", 3))
	})
}

func TestJournalConfigChecked(t *testing.T) {
	cfg := Config{ID: 1, Meta: &meta.Node{}, Replication: nopSender{}, Forward: nopSender{}, Journal: true, Durability: wal.SyncNever}
	if _, err := Open(cfg); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Open with Journal and SyncNever = %v, want ErrInvalidArgument", err)
	}
	cfg.Durability, cfg.SyncGroup = wal.SyncAlways, wal.NewSyncGroup()
	if _, err := Open(cfg); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Open with Journal and a SyncGroup = %v, want ErrInvalidArgument", err)
	}
}

// leaderISRAtLeast reports whether the replica leads with an ISR of at
// least n members in its own view.
func (r *replica) leaderISRAtLeast(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.role == roleLeader && r.mu.ready && len(r.mu.part.ISR) >= n
}

type nopSender struct{}

func (nopSender) Send(uint64, []byte) error { return nil }

// A node whose journal is found corrupt at its start moves it aside and
// starts a new one: it comes up, its replicas catch up from their leader,
// and nothing acknowledged is lost.
func TestJournalCorruptAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, withJournal)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 30)
		values(c)
		fsys := c.fs[f].(*wal.MemFS)
		fsys.Crash(wal.CrashOptions{})
		c.stopCrashed(f)
		files, err := fsys.ReadDir("/data/journal")
		if err != nil || len(files) == 0 {
			t.Fatalf("journal of node %d: %v, %v", f, files, err)
		}
		seg := "/data/journal/" + files[0]
		data, err := wal.ReadFile(fsys, seg)
		if err != nil {
			t.Fatal(err)
		}
		// A bit in the middle of the segment: a frame that others follow.
		off := int64(len(data) / 3)
		w, err := fsys.OpenReadWrite(seg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte{data[off] ^ 0x10}, off); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(w.Sync(), w.Close()); err != nil {
			t.Fatal(err)
		}
		c.start(f)
		dirs, _ := fsys.ReadDir("/data")
		moved := false
		for _, d := range dirs {
			moved = moved || strings.HasPrefix(d, "journal.corrupt-")
		}
		if !moved {
			t.Fatalf("node %d started without moving its corrupt journal aside: /data holds %v", f, dirs)
		}
		appendN(t, ctx, c, l, "b", 5)
		checkValues(t, values(c), append(names("a", 30), names("b", 5)...))
	})
}
