package replication

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/internal/mux"
	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// appendTo appends n records "prefix/i" of at least size bytes to
// topic/partition through node id, with AcksAll.
func appendTo(t *testing.T, ctx context.Context, c *tcluster, id uint64, topic string, partition int32, prefix string, n, size int) {
	t.Helper()
	for i := range n {
		v := fmt.Sprintf("%s/%d", prefix, i)
		v += strings.Repeat(".", max(0, size-len(v)))
		if _, _, err := c.nodes[id].rep.Append(ctx, topic, partition, []log.Record{{Value: []byte(v)}}, AcksAll); err != nil {
			t.Fatalf("append %s to %s/%d via node %d: %v", v, topic, partition, id, err)
		}
	}
}

// runMetaAlone runs node id's metadata without its replication Manager
// until done holds, then stops it. The node's metadata so learns of
// changes that its replication never sees as events: as when a node
// crashes after its metadata applied a deletion and before its Manager
// removed the replicas (or while it removed them). It snapshots after
// every entry, so its next start begins from a State past them.
func (c *tcluster) runMetaAlone(id uint64, what string, done func(*meta.Node) bool) {
	c.t.Helper()
	ep := c.net.Endpoint(id)
	mx := mux.New(ep)
	mn, err := meta.Open(meta.Config{ID: id, Peers: c.ids, MemStore: c.mem[id], SnapshotEntries: 1,
		Raft: mx.Sender(mux.TagRaft), Meta: mx.Sender(mux.TagMeta)})
	if err != nil {
		c.t.Fatalf("meta open %d: %v", id, err)
	}
	for _, err := range []error{mx.Handle(mux.TagRaft, mn.HandleRaft), mx.Handle(mux.TagMeta, mn.HandleMeta), mx.Start()} {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	c.waitFor(what, 30*time.Second, func() bool { return done(mn) })
	if err := ep.Close(); err != nil {
		c.t.Errorf("close endpoint %d: %v", id, err)
	}
	if err := mn.Close(); err != nil {
		c.t.Errorf("close meta %d: %v", id, err)
	}
}

// dirsWithPrefix lists the entries of dir whose names start with prefix.
func dirsWithPrefix(fsys wal.FS, dir, prefix string) []string {
	names, _ := fsys.ReadDir(dir)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// logLines is a slog handler that keeps the messages and attributes it
// receives, one line each.
type logLines struct {
	mu    *sync.Mutex
	lines *[]string
}

func newLogLines() logLines { return logLines{mu: &sync.Mutex{}, lines: new([]string)} }

func (l logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logLines) WithGroup(string) slog.Handler            { return l }
func (l logLines) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	*l.lines = append(*l.lines, b.String())
	l.mu.Unlock()
	return nil
}

// matching returns the lines that contain s.
func (l logLines) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range *l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// A node that was down while a topic was deleted, and whose metadata
// learned of the deletion before its Manager could remove the replicas,
// removes their directories at its next start, quarantined ones too, and
// forgets them in its journal, which then trims past their records.
func TestSweepRemovesTopicDeletedWhileDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const down = 3
		logs := newLogLines()
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			cfg.Journal = true
			cfg.journalSegmentSize = 16 << 10
			if id == down {
				cfg.Logger = slog.New(logs)
			}
		})
		gone := c.createTopic("gone", meta.TopicConfig{Partitions: 2, ReplicationFactor: 3})
		c.createTopic("kept", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendTo(t, ctx, c, c.leader("kept", 0), "kept", 0, "a", 5, 100)
		for p := range int32(2) {
			appendTo(t, ctx, c, c.leader("gone", p), "gone", p, "g", 5, 100)
		}
		fsys := c.fs[down]
		prefix := fmt.Sprintf("gone-%d-", gone.ID)
		// A quarantine of one of its replicas, as a corrupt log left.
		quarantined := replicaDir("/data", "gone", gone.ID, 1) + ".corrupt-12345"
		if err := fsys.MkdirAll(quarantined); err != nil {
			t.Fatal(err)
		}
		if err := wal.WriteFileAtomic(fsys, quarantined+"/00000000000000000000.seg", []byte("evidence")); err != nil {
			t.Fatal(err)
		}
		c.stop(down)

		if err := c.nodes[1].meta.DeleteTopic(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		c.runMetaAlone(down, "the deletion applied on the stopped node", func(n *meta.Node) bool {
			_, ok := n.State().Topic("gone")
			return !ok && n.Incarnation() != 0
		})
		if got := dirsWithPrefix(fsys, "/data", prefix); len(got) != 3 {
			t.Fatalf("before the restart node %d holds %v, want the 2 replicas of the deleted topic and a quarantine", down, got)
		}

		n := c.start(down)
		end0 := n.rep.journal.Stats().End
		c.waitFor("the deleted topic's directories removed", 30*time.Second, func() bool {
			return len(dirsWithPrefix(fsys, "/data", prefix)) == 0 && len(logs.matching("replication: removed")) >= 3
		})
		if got := logs.matching("replication: removed"); len(got) != 3 {
			t.Errorf("logged removals %q, want 3", got)
		}
		if got := dirsWithPrefix(fsys, "/data", "kept-"); len(got) != 1 {
			t.Errorf("replicas of the kept topic on node %d: %v", down, got)
		}

		// The journal trims past the deleted replicas' records once enough
		// was written since: 60 KiB through 16 KiB segments.
		appendTo(t, ctx, c, c.leader("kept", 0), "kept", 0, "b", 60, 1024)
		c.waitFor("the journal trimmed past the deleted topic's records", 30*time.Second, func() bool {
			return c.nodes[down].rep.journal.Stats().Start > end0
		})
		recs := c.converged("kept", 0)
		if len(recs) != 65 {
			t.Fatalf("kept topic holds %d records, want 65", len(recs))
		}
	})
}

// A node that restarts cut off from the metadata quorum removes nothing
// until a Barrier confirms its view, and never a replica of a live topic,
// nor a quarantine of one; closing it while its sweep waits stops the
// sweep.
func TestSweepKeepsLiveReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const down = 3
		logs := newLogLines()
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			cfg.Journal = true
			if id == down {
				cfg.Logger = slog.New(logs)
			}
		})
		gone := c.createTopic("gone", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, c.leader("t", 0), "a", 5)
		appendTo(t, ctx, c, c.leader("gone", 0), "gone", 0, "g", 3, 10)
		fsys := c.fs[down]
		quarantined := replicaDir("/data", "t", top.ID, 0) + ".corrupt-12345"
		if err := fsys.MkdirAll(quarantined); err != nil {
			t.Fatal(err)
		}
		c.stop(down)
		if err := c.nodes[1].meta.DeleteTopic(ctx, "gone"); err != nil {
			t.Fatal(err)
		}

		c.net.Isolate(down)
		for restart := range 2 {
			c.start(down)
			c.waitFor("the sweep waits for a quorum", 30*time.Second, func() bool {
				return len(logs.matching("waiting for a metadata quorum")) > restart
			})
			time.Sleep(3 * sweepBarrierTimeout) // three more attempts fail
			synctest.Wait()
			if got := logs.matching("replication: removed"); len(got) > 0 {
				t.Fatalf("removed without a quorum: %q", got)
			}
			for _, prefix := range []string{"t-", "gone-"} {
				if got := dirsWithPrefix(fsys, "/data", prefix); len(got) == 0 {
					t.Fatalf("no %s* directory left on the isolated node", prefix)
				}
			}
			c.stop(down) // Close stops the waiting sweep (synctest reports a goroutine left blocked)
		}

		c.net.Heal()
		n := c.start(down)
		c.waitFor("the deleted topic's replica removed", 30*time.Second, func() bool {
			return len(dirsWithPrefix(fsys, "/data", fmt.Sprintf("gone-%d-", gone.ID))) == 0
		})
		c.waitFor("the sweep done", 30*time.Second, func() bool {
			return len(logs.matching("kept for inspection")) > 0
		})
		if got := logs.matching(fmt.Sprintf("t-%d-0", top.ID)); slices.ContainsFunc(got, func(s string) bool {
			return strings.Contains(s, "replication: removed")
		}) {
			t.Fatalf("a live replica's directory removed: %q", got)
		}
		if got := dirsWithPrefix(fsys, "/data", fmt.Sprintf("t-%d-0", top.ID)); len(got) != 2 {
			t.Fatalf("live replica and its quarantine: %v", got)
		}
		if r := n.rep.replica(pkey{top.ID, 0}); r == nil || r.log.LogStartOffset() != 0 || r.log.LogEndOffset() < 5 {
			t.Fatalf("live replica on node %d lost its log", down)
		}
		appendN(t, ctx, c, c.leader("t", 0), "b", 3)
		checkValues(t, values(c), append(names("a", 5), names("b", 3)...))
	})
}

// The sweep's decision, on real States: only facts no later State can
// undo.
func TestOrphanReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		before := c.nodes[1].meta.State()
		gone := c.createTopic("gone", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		one := c.createTopic("one", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.nodes[1].meta.DeleteTopic(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		after := c.nodes[1].meta.State()
		holder := one.Partitions[0].Replicas[0]
		other := c.other(holder)
		dir := func(name string, id uint64, p int32) replicaDirName {
			d, ok := parseReplicaDir(fmt.Sprintf("%s-%d-%d", name, id, p))
			if !ok {
				t.Fatalf("cannot parse %s-%d-%d", name, id, p)
			}
			return d
		}
		for _, tc := range []struct {
			node uint64
			st   *meta.State
			d    replicaDirName
			want string
		}{
			{1, before, dir("t", top.ID, 0), ""}, // created after the State
			{1, before, dir("gone", gone.ID, 0), ""},
			{1, after, dir("t", top.ID, 0), ""},
			{1, after, dir("gone", gone.ID, 0), "topic deleted"},
			{1, after, dir("t", gone.ID, 0), "topic deleted"}, // another topic's ID under the name
			{1, after, dir("t", top.ID, 1), "no such partition"},
			{holder, after, dir("one", one.ID, 0), ""},
			{other, after, dir("one", one.ID, 0), "partition not assigned to this node"},
		} {
			if got := c.nodes[tc.node].rep.orphanReason(tc.st, tc.d); got != tc.want {
				t.Errorf("node %d, State at %d, %s: %q, want %q", tc.node, tc.st.Index(), tc.d.base, got, tc.want)
			}
		}
	})
}

func TestParseReplicaDir(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ok          bool
		topic, base string
		id          uint64
		part        int32
		quarantined bool
	}{
		{"a-1-2", true, "a", "a-1-2", 1, 2, false},
		{"a-b-10-0", true, "a-b", "a-b-10-0", 10, 0, false},
		{"a.corrupt-5-7-0", true, "a.corrupt-5", "a.corrupt-5-7-0", 7, 0, false},
		{"a-7-0.corrupt-123", true, "a", "a-7-0", 7, 0, true},
		{"x.corrupt-7-0.corrupt-9", true, "x.corrupt", "x.corrupt-7-0", 7, 0, true},
		{"journal", false, "", "", 0, 0, false},
		{"journal.corrupt-123", false, "", "", 0, 0, false},
		{"a-01-2", false, "", "", 0, 0, false},
		{"a-1-02", false, "", "", 0, 0, false},
		{"-1-2", false, "", "", 0, 0, false},
		{"a-1-2.corrupt-", false, "", "", 0, 0, false},
		{"a-1-2.corrupt-1x", false, "", "", 0, 0, false},
		{"a-1-99999999999", false, "", "", 0, 0, false},
		{"a b-1-2", false, "", "", 0, 0, false},
		{"a-1", false, "", "", 0, 0, false},
	} {
		d, ok := parseReplicaDir(tc.name)
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.name, ok)
			continue
		}
		if ok && (d.topic != tc.topic || d.base != tc.base || d.key != (pkey{tc.id, tc.part}) || d.quarantined != tc.quarantined) {
			t.Errorf("%q: %+v", tc.name, d)
		}
	}
}

// A replica whose files could not be removed when its topic was deleted
// does not hold the journal back, and its directory is removed by the
// next start's sweep.
func TestSweepRemovesWhatAFailedRemovalLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const faulty = 3
		var ffs *wal.FaultFS
		logs := newLogLines()
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			cfg.Journal = true
			cfg.journalSegmentSize = 16 << 10
			if id == faulty {
				ffs = wal.NewFaultFS(cfg.FS)
				cfg.FS = ffs
				cfg.Logger = slog.New(logs)
			}
		})
		gone := c.createTopic("gone", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		c.createTopic("kept", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendTo(t, ctx, c, c.leader("gone", 0), "gone", 0, "g", 3, 10)
		end0 := c.nodes[faulty].rep.journal.Stats().End
		ffs.Inject(wal.Fault{Ops: wal.OpRemove, Sticky: true})
		if err := c.nodes[1].meta.DeleteTopic(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("the failed removal logged", 30*time.Second, func() bool {
			return len(logs.matching("closing replica")) > 0
		})
		prefix := fmt.Sprintf("gone-%d-", gone.ID)
		if got := dirsWithPrefix(c.fs[faulty], "/data", prefix); len(got) != 1 {
			t.Fatalf("after a failed removal: %v", got)
		}
		ffs.Reset()
		appendTo(t, ctx, c, c.leader("kept", 0), "kept", 0, "k", 60, 1024)
		c.waitFor("the journal trimmed past the removed replica's records", 30*time.Second, func() bool {
			return c.nodes[faulty].rep.journal.Stats().Start > end0
		})
		c.stop(faulty)
		// Snapshotted past the deletion, the metadata replays no event of
		// the topic at the next start: only the sweep can remove it.
		c.runMetaAlone(faulty, "a snapshot past the deletion", func(n *meta.Node) bool { return n.Incarnation() != 0 })
		c.start(faulty)
		c.waitFor("the removal at the restart logged", 30*time.Second, func() bool {
			return len(logs.matching("replication: removed an orphaned")) > 0
		})
		if got := dirsWithPrefix(c.fs[faulty], "/data", prefix); len(got) != 0 {
			t.Fatalf("after the restart: %v", got)
		}
	})
}

// journalFailFS fails the writes to files under dir once failing is set:
// a journal whose device fails.
type journalFailFS struct {
	wal.FS
	dir     string
	failing *atomic.Bool
}

func (f journalFailFS) wrap(name string, file wal.File, err error) (wal.File, error) {
	if err != nil || !strings.HasPrefix(name, f.dir) {
		return file, err
	}
	return failingFile{file, f.failing}, nil
}

func (f journalFailFS) Create(name string) (wal.File, error) {
	file, err := f.FS.Create(name)
	return f.wrap(name, file, err)
}

func (f journalFailFS) OpenReadWrite(name string) (wal.File, error) {
	file, err := f.FS.OpenReadWrite(name)
	return f.wrap(name, file, err)
}

type failingFile struct {
	wal.File
	failing *atomic.Bool
}

func (f failingFile) WriteAt(p []byte, off int64) (int, error) {
	if f.failing.Load() {
		return 0, syscall.EIO
	}
	return f.File.WriteAt(p, off)
}

// A replica's journal id is forgotten before its files are removed: when
// the journal cannot record the Forget, the directory stays, and the next
// start's sweep forgets and removes it; the journal then trims. (Files
// removed first would leave the journal records of a directory gone for
// good: it would never trim again.)
func TestRemovalForgetsBeforeRemoving(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const faulty = 3
		var failing atomic.Bool
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			cfg.Journal = true
			cfg.journalSegmentSize = 16 << 10
			if id == faulty {
				cfg.FS = journalFailFS{FS: cfg.FS, dir: "/data/journal/", failing: &failing}
			}
		})
		gone := c.createTopic("gone", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		c.createTopic("kept", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendTo(t, ctx, c, c.leader("kept", 0), "kept", 0, "a", 3, 10)
		appendTo(t, ctx, c, c.leader("gone", 0), "gone", 0, "g", 3, 10)
		failing.Store(true)
		if err := c.nodes[1].meta.DeleteTopic(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("the journal failed on the deletion", 30*time.Second, func() bool {
			return c.nodes[faulty].rep.journal.Err() != nil && c.nodes[faulty].rep.replica(pkey{gone.ID, 0}) == nil
		})
		c.stopCrashed(faulty)
		failing.Store(false)
		prefix := fmt.Sprintf("gone-%d-", gone.ID)
		if got := dirsWithPrefix(c.fs[faulty], "/data", prefix); len(got) != 1 {
			t.Fatalf("a replica whose Forget failed: %v, want its directory kept", got)
		}
		c.runMetaAlone(faulty, "a snapshot past the deletion", func(n *meta.Node) bool { return n.Incarnation() != 0 })
		n := c.start(faulty)
		end0 := n.rep.journal.Stats().End
		c.waitFor("the directory removed at the restart", 30*time.Second, func() bool {
			return len(dirsWithPrefix(c.fs[faulty], "/data", prefix)) == 0
		})
		appendTo(t, ctx, c, c.leader("kept", 0), "kept", 0, "b", 60, 1024)
		c.waitFor("the journal trimmed past the removed replica's records", 30*time.Second, func() bool {
			return c.nodes[faulty].rep.journal.Stats().Start > end0
		})
	})
}
