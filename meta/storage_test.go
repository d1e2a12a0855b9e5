package meta

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

func ent(i, term uint64) *pb.Entry {
	return &pb.Entry{Index: new(i), Term: new(term), Type: pb.EntryNormal.Enum(), Data: []byte{byte(i)}}
}

func openTestStorage(t *testing.T, path string) *storage {
	t.Helper()
	s, err := openStorage(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lastTerm(t *testing.T, s *storage) (uint64, uint64, uint64) {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	term, err := s.Term(last)
	if err != nil {
		t.Fatal(err)
	}
	return first, last, term
}

func TestStorageSaveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	t.Cleanup(func() { checkBolt(t, path) })
	s := openTestStorage(t, path)
	hs := &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(3))}
	if err := s.save(hs, []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites the uncommitted tail from index 4 on.
	if err := s.save(nil, []*pb.Entry{ent(4, 3), ent(5, 3)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStorage(t, path)
	if f, l, term := lastTerm(t, s); f != 1 || l != 5 || term != 3 {
		t.Fatalf("reopened: first %d last %d term %d", f, l, term)
	}
	got, _, _ := s.InitialState()
	if got.GetTerm() != 2 || got.GetVote() != 1 || got.GetCommit() != 3 {
		t.Fatalf("hard state %v", got)
	}
	// Snapshot at 4 and compact: the log starts after it, also after reopen.
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	if err := s.snapshotAndCompact(4, 0, cs, []byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStorage(t, path)
	defer s.close()
	if f, l, _ := lastTerm(t, s); f != 5 || l != 5 {
		t.Fatalf("after compaction: first %d last %d", f, l)
	}
	snap, _ := s.Snapshot()
	if snap.GetMetadata().GetIndex() != 4 || snap.GetMetadata().GetTerm() != 3 || string(snap.GetData()) != "state" ||
		len(snap.GetMetadata().GetConfState().GetVoters()) != 3 {
		t.Fatalf("snapshot %v", snap)
	}
	if _, err := s.Entries(3, 5, 1<<20); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("compacted entries: %v", err)
	}
	// A snapshot received from the leader replaces the whole log.
	in := &pb.Snapshot{Data: []byte("newer"), Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(10)), Term: new(uint64(4)), ConfState: cs}}
	if err := s.save(nil, nil, in); err != nil {
		t.Fatal(err)
	}
	if f, l, term := lastTerm(t, s); f != 11 || l != 10 || term != 4 {
		t.Fatalf("after snapshot install: first %d last %d term %d", f, l, term)
	}
}

func TestStorageCorruptEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openTestStorage(t, path)
	if err := s.save(nil, []*pb.Entry{ent(1, 1), ent(2, 1)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRaft).Put(entryKey(2), []byte{0xff, 0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	s.close()
	if _, err := openStorage(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a corrupt log: %v", err)
	}
	// A gap in the log is corruption too.
	if db, err := bolt.Open(path, 0o600, nil); err != nil {
		t.Fatal(err)
	} else {
		_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRaft).Delete(entryKey(2)) })
		_ = db.Update(func(tx *bolt.Tx) error {
			return putProto(tx.Bucket(bucketRaft), entryKey(3), ent(3, 1))
		})
		db.Close()
	}
	if _, err := openStorage(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a log with a gap: %v", err)
	}
	checkBolt(t, path)
}

// TestStorageErrorStopsNode: when the raft log cannot be written the node
// stops cleanly: no panic, Err says why, calls return ErrClosed.
func TestStorageErrorStopsNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, true)
		c.leader()
		c.registered()
		n := c.nodes[1]
		if err := n.st.db.Close(); err != nil { // the disk goes away
			t.Fatal(err)
		}
		_, err := n.CreateTopic(ctxT(t, 10*time.Second), "t", TopicConfig{Partitions: 1})
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("create on a broken disk: %v", err)
		}
		if !errors.Is(n.Err(), berrors.ErrDatabaseNotOpen) {
			t.Fatalf("Err: %v", n.Err())
		}
		if err := n.Barrier(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("barrier after stop: %v", err)
		}
		delete(c.nodes, 1)
		_ = c.eps[1].Close()
		_ = n.Close()
	})
}

// TestSnapshotInstallDropsConflictingTailOnDisk: raft installs a
// leader's snapshot on a follower whose log conflicts with it; the
// in-memory log (MemoryStorage.ApplySnapshot) drops every entry, but
// meta.db keeps the entries above the snapshot index, and a reopen brings
// them back: the node's log after restart is not the log it had.
func TestSnapshotInstallDropsConflictingTailOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openTestStorage(t, path)
	hs := &pb.HardState{Term: new(uint64(3)), Vote: new(uint64(2)), Commit: new(uint64(2))}
	// Entries 3..10 of term 3 are uncommitted (an old leader's tail).
	var ents []*pb.Entry
	for i := uint64(1); i <= 10; i++ {
		term := uint64(3)
		if i <= 2 {
			term = 1
		}
		ents = append(ents, ent(i, term))
	}
	if err := s.save(hs, ents, nil); err != nil {
		t.Fatal(err)
	}
	// The term-4 leader's snapshot at index 6, term 4: conflicts at 3..6.
	snap := &pb.Snapshot{Data: []byte("x"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(6)), Term: new(uint64(4)),
		ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	hs2 := &pb.HardState{Term: new(uint64(4)), Vote: new(uint64(0)), Commit: new(uint64(6))}
	if err := s.save(hs2, nil, snap); err != nil {
		t.Fatal(err)
	}
	_, lastBefore, termBefore := lastTerm(t, s)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStorage(t, path)
	defer s.close()
	_, lastAfter, termAfter := lastTerm(t, s)
	t.Logf("before close: last %d term %d; after reopen: last %d term %d", lastBefore, termBefore, lastAfter, termAfter)
	if lastAfter != lastBefore || termAfter != termBefore {
		t.Fatalf("reopened log ends at %d (term %d), in memory it ended at %d (term %d)", lastAfter, termAfter, lastBefore, termBefore)
	}
}

// A Dir already open (in this process or another) is refused after the
// lock wait with an error that says so.
func TestOpenStorageLockedSaysSo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := openStorage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.close() }()
	_, err = openStorage(path)
	if !errors.Is(err, berrors.ErrTimeout) || !strings.Contains(err.Error(), "open elsewhere") {
		t.Fatalf("second open of %s = %v, want a lock timeout naming the cause", path, err)
	}
}
