package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/replog/replog/wal"
)

// storage is the raft log of one node: a raft.MemoryStorage that raft reads
// from, written through to a bbolt file (when db is non-nil) before the
// memory copy changes. Reopening loads the file back into memory, which is
// bounded by log compaction.
//
// The bbolt file (meta.db) holds one bucket:
//
//	raft/
//	  "hardstate"        proto pb.HardState
//	  "snapshot"         proto pb.Snapshot (metadata + state-machine data)
//	  "e" + u64be(index) proto pb.Entry, contiguous up to the last index;
//	                     at or below the snapshot's index they are ignored
//
// Writes of one Ready (entries, hard state, snapshot) are one bbolt
// transaction, synced on commit.
type storage struct {
	*raft.MemoryStorage
	db *bolt.DB // nil: in memory only
}

var (
	bucketRaft   = []byte("raft")
	keyHardState = []byte("hardstate")
	keySnapshot  = []byte("snapshot")
)

func entryKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'e'
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

// openStorage opens (creating it if need be) the log at path, or an
// in-memory log when path is "".
func openStorage(path string) (*storage, error) {
	s := &storage{MemoryStorage: raft.NewMemoryStorage()}
	if path == "" {
		return s, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeoutOpen})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("meta: open %s: locked by another process for %v (is this Dir open elsewhere?): %w", path, timeoutOpen, err)
	}
	if err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", path, err)
	}
	// bolt.Open may have created the file; bbolt syncs the file, not its
	// entry in the directory, which a power failure could otherwise take
	// with every vote and entry stored in it.
	if err := (wal.OSFS{}).SyncDir(filepath.Dir(path)); err != nil {
		_ = db.Close() // the sync error is the one to report
		return nil, fmt.Errorf("meta: open %s: %w", path, err)
	}
	s.db = db
	if err := s.load(); err != nil {
		_ = db.Close() // the load error is the one to report
		return nil, err
	}
	return s, nil
}

// load reads the file into memory.
func (s *storage) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRaft)
		if err != nil {
			return fmt.Errorf("meta: create bucket: %w", err)
		}
		if v := b.Get(keySnapshot); v != nil {
			snap := new(pb.Snapshot)
			if err := proto.Unmarshal(v, snap); err != nil {
				return fmt.Errorf("%w: stored snapshot: %v", ErrCorrupt, err)
			}
			if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
				return fmt.Errorf("meta: load snapshot: %w", err)
			}
		}
		if v := b.Get(keyHardState); v != nil {
			hs := new(pb.HardState)
			if err := proto.Unmarshal(v, hs); err != nil {
				return fmt.Errorf("%w: stored hard state: %v", ErrCorrupt, err)
			}
			if err := s.MemoryStorage.SetHardState(hs); err != nil {
				return err
			}
		}
		first, _ := s.MemoryStorage.FirstIndex()
		var ents []*pb.Entry
		c := b.Cursor()
		for k, v := c.Seek(entryKey(first)); k != nil && k[0] == 'e'; k, v = c.Next() {
			e := new(pb.Entry)
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("%w: stored entry: %v", ErrCorrupt, err)
			}
			want := first + uint64(len(ents))
			if e.GetIndex() != want || binary.BigEndian.Uint64(k[1:]) != want {
				return fmt.Errorf("%w: stored entry %d where %d belongs", ErrCorrupt, e.GetIndex(), want)
			}
			ents = append(ents, e)
		}
		return s.MemoryStorage.Append(ents)
	})
}

// save makes one Ready's entries, hard state and snapshot durable, then
// visible to raft.
func (s *storage) save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	if s.db != nil && (hasSnap || len(ents) > 0 || hs != nil) {
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRaft)
			if hasSnap {
				if err := putProto(b, keySnapshot, snap); err != nil {
					return err
				}
				// Raft installs a snapshot only over a log that conflicts
				// with it, and MemoryStorage.ApplySnapshot drops every
				// entry: so must the disk, or a restart would bring back
				// the conflicting tail after the snapshot. This Ready's
				// entries are written after, in the same transaction.
				if err := deleteEntries(b, 0, ^uint64(0)); err != nil {
					return err
				}
			}
			if len(ents) > 0 {
				if err := deleteEntries(b, ents[0].GetIndex(), ^uint64(0)); err != nil {
					return err
				}
				for _, e := range ents {
					if err := putProto(b, entryKey(e.GetIndex()), e); err != nil {
						return err
					}
				}
			}
			if hs != nil {
				return putProto(b, keyHardState, hs)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("meta: save raft log: %w", err)
		}
	}
	if hasSnap {
		if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("meta: apply snapshot to log: %w", err)
		}
	}
	if err := s.MemoryStorage.Append(ents); err != nil {
		return fmt.Errorf("meta: append to log: %w", err)
	}
	if hs != nil {
		return s.MemoryStorage.SetHardState(hs)
	}
	return nil
}

// snapshotAndCompact records a state-machine snapshot at applied index i
// and discards the log up to i-keep, so that a follower a little behind
// still catches up from the log rather than from a snapshot. (After a
// reopen the log starts after the snapshot.)
func (s *storage) snapshotAndCompact(i, keep uint64, cs *pb.ConfState, data []byte) error {
	snap, err := s.MemoryStorage.CreateSnapshot(i, cs, data)
	if err != nil {
		return fmt.Errorf("meta: create snapshot: %w", err)
	}
	first, _ := s.MemoryStorage.FirstIndex()
	compact := uint64(0)
	if i > keep && i-keep >= first {
		compact = i - keep
	}
	if s.db != nil {
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRaft)
			if err := putProto(b, keySnapshot, snap); err != nil {
				return err
			}
			return deleteEntries(b, 0, compact+1)
		})
		if err != nil {
			return fmt.Errorf("meta: save snapshot: %w", err)
		}
	}
	if compact == 0 {
		return nil
	}
	if err := s.MemoryStorage.Compact(compact); err != nil {
		return fmt.Errorf("meta: compact log: %w", err)
	}
	return nil
}

// close closes the bbolt file.
func (s *storage) close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

func putProto(b *bolt.Bucket, k []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("meta: marshal: %w", err)
	}
	return b.Put(k, v)
}

// deleteEntries deletes the stored entries with index in [lo, hi).
func deleteEntries(b *bolt.Bucket, lo, hi uint64) error {
	c := b.Cursor()
	for k, _ := c.Seek(entryKey(lo)); k != nil && k[0] == 'e' && binary.BigEndian.Uint64(k[1:]) < hi; k, _ = c.Seek(entryKey(lo)) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
