package replication

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

// TestSyncTimeoutDefault: the Manager's own waits on storage (snapshot
// writes, journal records) use the logs' default SyncTimeout when the
// Config leaves it zero, not a zero deadline.
func TestSyncTimeoutDefault(t *testing.T) {
	var c Config
	c.setDefaults()
	if c.SyncTimeout != wal.DefaultSyncTimeout {
		t.Fatalf("default SyncTimeout %v, want %v", c.SyncTimeout, wal.DefaultSyncTimeout)
	}
}

// gateFS blocks the Sync of temporary files (a snapshot's) until gate is
// closed: a disk that stalls on one file.
type gateFS struct {
	wal.FS
	gate chan struct{}
}

func (g *gateFS) Create(name string) (wal.File, error) {
	f, err := g.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, ".tmp") {
		return f, err
	}
	return gateFile{f, g.gate}, nil
}

type gateFile struct {
	wal.File
	gate chan struct{}
}

func (f gateFile) Sync() error { <-f.gate; return f.File.Sync() }

// TestSnapshotFromEarlierReplicaDistrusted: a periodic snapshot write of
// one replica, stalled past its close (snapIO gave up), lands after the
// next replica of the directory opened and took new batches. It names a
// batch the log never held (a leader round given offsets, never written)
// at offsets a new batch now holds: the rebuild after finds that producer's
// newest entry missing from the log and does not trust the snapshot.
func TestSnapshotFromEarlierReplicaDistrusted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, mem := snapLog(t)
		gfs := &gateFS{FS: mem, gate: make(chan struct{})}
		end := l.LogEndOffset()

		// Instance 1: a leader round for producer 7 got offsets [end,
		// end+9] (assignLocked records it and may queue a snapshot), and
		// its snapshot write stalls.
		old := snapReplica(t, l, gfs)
		m1 := old.m
		old.mu.producers[7] = &producerState{}
		old.mu.producers[7].record(1, seqBatch{firstSeq: 0, lastSeq: 9, baseOffset: end, lastOffset: end + 9, crc: 1234})
		old.mu.Lock()
		old.producersRecordedLocked(snapshotEvery, end+10)
		old.mu.Unlock()
		synctest.Wait()
		// The round fails (storage stalled), the replica is closed: close's
		// snapIO gives up after SyncTimeout.
		old.mu.Lock()
		old.mu.closed = true
		old.mu.Unlock()
		if err := old.snapIO(func() error { return nil }); !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("close's snapIO: %v", err)
		}

		// Instance 2 opens the same directory (no snapshot on disk yet):
		// rebuilds from the tail and takes producer 8's batch at end.
		m2 := snapManager(mem)
		if _, err := m2.rebuildProducers(l, "/p", map[int64]*producerState{}); err != nil {
			t.Fatal(err)
		}
		recs := make([]log.Record, 10)
		h := log.BatchHeader{LeaderEpoch: 2, ProducerID: 8, ProducerEpoch: 1, BaseSequence: 0}
		if _, _, err := l.AppendLeaderBatch(context.Background(), h, recs); err != nil {
			t.Fatal(err)
		}

		// The stalled disk answers: instance 1's write lands.
		close(gfs.gate)
		m1.wg.Wait()
		synctest.Wait()

		// Restart: the stale file is found out.
		got := map[int64]*producerState{}
		if _, err := snapManager(mem).rebuildProducers(l, "/p", got); err != nil {
			t.Fatal(err)
		}
		_, ghost, _ := func() (seqBatch, bool, error) {
			if got[7] == nil {
				return seqBatch{}, false, nil
			}
			return got[7].check(1, 0, 9, 1234)
		}()
		if ghost || got[8] == nil {
			t.Fatalf("after the stale write landed: producer 7's never-written batch known as held at [%d,%d]: %v; producer 8's batch there known: %v",
				end, end+9, ghost, got[8] != nil)
		}
	})
}
