package replication

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// A follower whose log is found corrupt when it restarts moves the damaged
// directory aside, starts an empty replica and recovers the partition from
// its leader; it serves nothing of the damaged log.
func TestCorruptReplicaRecoversFromLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 20)
		checkValues(t, values(c), names("a", 20))
		mfs := c.fs[f].(*wal.MemFS)
		mfs.Crash(wal.CrashOptions{}) // every frame synced: recovery scans the tail
		c.stopCrashed(f)
		dir := replicaDirIn(t, mfs, "/data")
		corruptFirstSegment(t, mfs, dir)
		c.start(f)
		appendN(t, ctx, c, l, "b", 5)
		checkValues(t, values(c), append(names("a", 20), names("b", 5)...)) // converged, f included
		r := replicaOf(t, c, f)
		c.waitFor("emptied replica back in the ISR", 30*time.Second, func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return !r.mu.fresh
		})
		names, err := mfs.ReadDir("/data")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, ".corrupt-") }) {
			t.Errorf("no quarantined directory under /data: %v", names)
		}
	})
}

// A replica whose sealed segment is damaged (Open checks only the last
// segment's frames) is found out by the producer table's tail read at
// start, and starts over as a corrupt log does. Before, the read's error
// stopped the rebuild silently: the replica could lead with a producer
// table missing batches its log held, and wrote retries of them twice
// (chaos seed 712746480657).
//
// With a clean stop too: the producer snapshot it writes would spare the
// start the tail read, but the read is made anyway, for this (a chaos seed
// lost acknowledged records when the damage was found only later, by a
// follower's catch-up read, with the ISR down to the damaged replica).
func TestCorruptSealedSegmentFoundAtStart(t *testing.T) {
	t.Run("crash", func(t *testing.T) { testCorruptSealedSegmentFoundAtStart(t, true) })
	t.Run("clean stop", func(t *testing.T) { testCorruptSealedSegmentFoundAtStart(t, false) })
}

func testCorruptSealedSegmentFoundAtStart(t *testing.T, crash bool) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, func(id uint64, cfg *Config) { cfg.SegmentSize = 1 << 10 })
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		n := 40
		if !crash {
			n = 400 // past the log's first index entry: reading the last batches does not read the first segment
		}
		appendN(t, ctx, c, l, "a", n)
		checkValues(t, values(c), names("a", n))
		mfs := c.fs[f].(*wal.MemFS)
		if crash {
			mfs.Crash(wal.CrashOptions{})
			c.stopCrashed(f)
		} else {
			c.stop(f)
		}
		dir := replicaDirIn(t, mfs, "/data")
		segs, err := mfs.ReadDir(dir)
		if err != nil || len(slices.DeleteFunc(slices.Clone(segs), func(n string) bool { return !strings.HasSuffix(n, ".wal") })) < 2 {
			t.Fatalf("want several segments in %s: %v, %v", dir, segs, err)
		}
		if crash {
			corruptFirstSegment(t, mfs, dir) // sealed: Open does not read its frames
		} else {
			corruptSealedSegment(t, mfs, dir)
		}
		c.start(f)
		c.waitReplica(f)
		// Found while opening, before any read could find it.
		entries, err := mfs.ReadDir("/data")
		if err != nil || !slices.ContainsFunc(entries, func(n string) bool { return strings.Contains(n, ".corrupt-") }) {
			t.Fatalf("the damaged replica was opened as it was: /data holds %v, %v", entries, err)
		}
		appendN(t, ctx, c, l, "b", 5)
		checkValues(t, values(c), append(names("a", n), names("b", 5)...))
	})
}

// A replica whose start-up read of its log's tail (the producer table)
// fails with an I/O error, not damage, fails as for a storage error: it
// takes no writes and its node reports itself unhealthy, so that it leads
// nothing with a producer table missing batches its log holds. Its log is
// kept (nothing says it is damaged). Before, the error only logged a
// warning and the replica served on with a partial table. Nor does its
// stop write a snapshot of that table.
func TestProducerTableReadErrorFailsReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Pointer[string] // the segment whose reads fail
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			cfg.SegmentSize = 1 << 10
			cfg.FS = &readFailFS{FS: cfg.FS, fail: func(name string) bool {
				p := failing.Load()
				return p != nil && *p == name
			}}
		})
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 40)
		checkValues(t, values(c), names("a", 40))
		c.stop(f)
		// A sealed segment between the first and the last: Open reads
		// only its header; the tail read reads its frames.
		dir := replicaDirIn(t, c.fs[f], "/data")
		segs, err := c.fs[f].ReadDir(dir)
		segs = slices.DeleteFunc(segs, func(n string) bool { return !strings.HasSuffix(n, ".wal") })
		if err != nil || len(segs) < 3 {
			t.Fatalf("want three segments or more in %s: %v, %v", dir, segs, err)
		}
		middle := filepath.Join(dir, segs[len(segs)-2])
		failing.Store(&middle)
		// Without the snapshot of its clean stop, so that any snapshot
		// its stop writes later shows (none must).
		if err := c.fs[f].Remove(filepath.Join(dir, producersFile)); err != nil {
			t.Fatal(err)
		}
		c.start(f)
		c.waitReplica(f)
		r := replicaOf(t, c, f)
		r.mu.Lock()
		failed := r.mu.failed
		r.mu.Unlock()
		if failed == nil || !errors.Is(failed, syscall.EIO) {
			t.Fatalf("replica after a failed tail read: failed = %v, want the read's EIO", failed)
		}
		c.waitFor("the node reports itself unhealthy", 30*time.Second, func() bool {
			n, ok := c.nodes[l].meta.State().Node(f)
			return ok && n.Unhealthy
		})
		appendN(t, ctx, c, l, "b", 5) // the others go on
		names, err := c.fs[f].ReadDir("/data")
		if err != nil || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, ".corrupt-") }) {
			t.Fatalf("replica directories of %d: %v, %v: want the log kept, not moved aside", f, names, err)
		}
		// Its table may be partial: its clean stop writes no snapshot of
		// it, so the next start reads the log again.
		c.stop(f)
		failing.Store(nil)
		if off, _, err := readProducerSnapshot(c.fs[f], dir); err != nil || off != -1 {
			t.Fatalf("the failed replica's stop wrote a snapshot (at %d, %v)", off, err)
		}
	})
}

// readFailFS fails reads of frames (with EIO) in the files fail picks,
// from when they are opened.
type readFailFS struct {
	wal.FS
	fail func(name string) bool
}

func (fs *readFailFS) Open(name string) (wal.File, error) {
	return fs.wrap(name, fs.FS.Open)
}

func (fs *readFailFS) OpenReadWrite(name string) (wal.File, error) {
	return fs.wrap(name, fs.FS.OpenReadWrite)
}

func (fs *readFailFS) wrap(name string, open func(string) (wal.File, error)) (wal.File, error) {
	f, err := open(name)
	if err != nil || !fs.fail(name) {
		return f, err
	}
	return readFailFile{f}, nil
}

// readFailFile fails reads past the segment header (which every Open
// reads): reads of frames.
type readFailFile struct{ wal.File }

func (f readFailFile) ReadAt(b []byte, off int64) (int, error) {
	if off == 0 {
		return f.File.ReadAt(b, off)
	}
	return 0, syscall.EIO
}

// replicaDirIn is the one replica directory under base.
func replicaDirIn(t *testing.T, fs wal.FS, base string) string {
	t.Helper()
	names, err := fs.ReadDir(base)
	if err != nil || len(names) != 1 {
		t.Fatalf("replica directories under %s: %v, %v", base, names, err)
	}
	return filepath.Join(base, names[0])
}

// corruptFirstSegment flips a byte inside the first frame of dir's first
// segment, which valid frames follow: corruption, not a torn tail.
// corruptSealedSegment flips a bit in the middle of the first segment of
// the log in dir (sealed): in a frame's payload, where only a read of that
// frame finds it.
func corruptSealedSegment(t *testing.T, fs wal.FS, dir string) {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	segs := slices.DeleteFunc(names, func(n string) bool { return !strings.HasSuffix(n, ".wal") })
	if len(segs) < 2 {
		t.Fatalf("want two segments or more in %s: %v", dir, segs)
	}
	name := filepath.Join(dir, segs[0])
	size, err := fs.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	file, err := fs.OpenReadWrite(name)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	b := make([]byte, 1)
	if _, err := file.ReadAt(b, size/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x08
	if _, err := file.WriteAt(b, size/2); err != nil {
		t.Fatal(err)
	}
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
}

func corruptFirstSegment(t *testing.T, fs wal.FS, dir string) {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("files of %s: %v", dir, names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".wal") && !strings.HasSuffix(n, ".seg") && !strings.HasSuffix(n, ".log") {
			continue
		}
		file, err := fs.OpenReadWrite(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		const at = 40
		if _, err := file.ReadAt(b, at); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x10
		if _, err := file.WriteAt(b, at); err != nil {
			t.Fatal(err)
		}
		if err := file.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no segment in %s: %v", dir, names)
}

// An emptied replica named leader leads nothing: the partition is offline
// rather than led by a replica that lost what the ISR held.
func TestEmptiedReplicaDoesNotLead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		_, f := c.topicT()
		r := replicaOf(t, c, f)
		r.mu.Lock()
		r.mu.fresh = true
		part, cfg := r.mu.part, meta.TopicConfig{MinInSyncReplicas: r.mu.minISR}
		r.mu.Unlock()
		part.Leader, part.LeaderEpoch = f, part.LeaderEpoch+1
		r.update(part, cfg)
		r.mu.Lock()
		role := r.mu.role
		r.mu.Unlock()
		if role == roleLeader {
			t.Fatalf("emptied replica of node %d took the leadership of epoch %d", f, part.LeaderEpoch)
		}
	})
}
