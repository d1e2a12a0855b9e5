package wal

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// FSSyncer is an optional capability of an FS: making the written data of
// many files durable with one flush of the file system(s) holding them,
// instead of one sync per file. A SyncGroup uses it; an FS without it gets
// no merging (each Log syncs its own file).
//
// Implementations: OSFS (syncfs(2) on Linux, once per file system among
// the files; elsewhere a sync of each file), MemFS (every file's data),
// FaultFS (fault-injectable as OpSyncFS) and StallFS (blocks while stalled).
type FSSyncer interface {
	// SyncFS makes the data written to each of files (opened by this FS)
	// durable, as File.Sync of each would, and possibly that of every other
	// file of the same file systems (syncfs(2) flushes them all, and their
	// directory entries; callers must not rely on more than the files
	// given). It may be called concurrently with writes to other files.
	SyncFS(files []File) error
}

// SyncGroup merges the syncs of the Logs that share it (Options.SyncGroup)
// into one flush of their file system: while one flush runs, every Log that
// finishes a write and needs a sync joins the next flush, and one of them
// runs it for all. A node whose partitions each have a Log then pays one
// device flush per round instead of one per partition; on a disk whose
// flushes serialise, that multiplies the node's synced throughput.
//
// Guarantee: a flush covers a Log's sync only if it starts after that Log's
// write returned. A flush already running when a Log asks does not count for
// it; the Log waits for the next one. Flushes of one file system never
// overlap.
//
// Measure before enabling it. ext4's journal already merges the concurrent
// fdatasyncs of different files into shared commits, and a flush also
// writes back what the Logs write while it runs without counting it for
// them. BenchmarkSyncGroup measures both load patterns: on the machine it
// was written on, a group doubled the throughput of 18 Logs appending in
// lockstep rounds, and cost about a third of it when each Log appended
// independently as fast as its syncs allowed.
//
// Trade-offs:
//   - On Linux a flush is syncfs(2): it writes back every dirty file of the
//     file system, other programs' too. Its latency depends on how much
//     they have dirtied; one Log's sync can wait for another program's
//     gigabytes.
//   - syncfs reports writeback errors only since Linux 5.8; on older
//     kernels a failed writeback can go unreported. Do not use a group
//     there.
//   - The group is fail-stop: a failed flush fails every Log it covered,
//     and, as the error may belong to any file of the file system, every
//     later sync through the group fails too (the Logs fail with it). A
//     failed group is never used again; make a new one for Logs reopened
//     after the failure.
//
// Where every Log of a process shares one file system (LocalCluster, one
// node per process on one disk) one group for the process is best. Logs on
// different FS values may share a group: each FS gets its own flushes, and
// OSFS flushes each file system the files of a round live on. A Log on an
// FS that does not implement FSSyncer (or whose type is not comparable)
// syncs its own file, as without a group.
//
// The group has no goroutine: the first Log to need a flush runs it, the
// others wait for it. A stalled flush stalls every Log waiting for it; each
// Log's SyncTimeout watchdog still fails it with ErrStorageStalled on time.
// Safe for concurrent use.
type SyncGroup struct {
	flushes atomic.Int64
	syncs   atomic.Int64
	mu      struct {
		sync.Mutex
		err   error       // sticky: the first failed flush
		lanes []*syncLane // one per FS with a flush running or due
	}
}

// syncLane is a group's state for one FS.
type syncLane struct {
	fs      FS
	running bool       // a flush runs, or its leader has been handed the turn
	next    *syncRound // the round Logs join now; it starts after the running one
}

// syncRound is one flush and the Logs it covers.
type syncRound struct {
	files []File        // the files of the Logs that joined; frozen once the round starts
	start chan struct{} // closed when the round's leader may run it
	done  chan struct{} // closed when the flush returned; err is set before
	err   error
}

// SyncGroupStats are counters of a SyncGroup since NewSyncGroup.
type SyncGroupStats struct {
	Syncs   int64 // syncs asked of the group by its Logs
	Flushes int64 // flushes issued (FSSyncer.SyncFS calls)
}

// NewSyncGroup returns a group for Options.SyncGroup.
func NewSyncGroup() *SyncGroup { return &SyncGroup{} }

// Stats returns the group's counters. Syncs/Flushes is how many Log syncs
// one flush served on average.
func (g *SyncGroup) Stats() SyncGroupStats {
	return SyncGroupStats{Syncs: g.syncs.Load(), Flushes: g.flushes.Load()}
}

// Err returns the error of the group's failed flush, or nil.
func (g *SyncGroup) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.err
}

// sync makes f's written data durable through a flush that starts after
// the call, shared with the other Logs that ask meanwhile. fsys is the FS
// that opened f. It blocks while an earlier flush runs.
func (g *SyncGroup) sync(fsys FS, f File) error {
	g.syncs.Add(1)
	fss, ok := fsys.(FSSyncer)
	if !ok || !reflect.ValueOf(fsys).Comparable() {
		return f.Sync()
	}
	g.mu.Lock()
	if err := g.mu.err; err != nil {
		g.mu.Unlock()
		return failedEarlier(err)
	}
	ln := g.laneLocked(fsys)
	r := ln.next
	lead := r == nil
	if lead {
		r = &syncRound{start: make(chan struct{}), done: make(chan struct{})}
		ln.next = r
	}
	r.files = append(r.files, f)
	run := lead && !ln.running
	if run {
		ln.running = true
		ln.next = nil
	}
	g.mu.Unlock()
	switch {
	case run:
	case lead:
		<-r.start // the running flush handed the turn to this round
	default:
		<-r.done
		return r.err
	}
	g.flush(fss, ln, r)
	return r.err
}

// flush runs round r of lane ln, publishes its result and hands the turn
// to the round that gathered meanwhile, if any.
func (g *SyncGroup) flush(fss FSSyncer, ln *syncLane, r *syncRound) {
	g.mu.Lock()
	err := g.mu.err
	g.mu.Unlock()
	if err != nil {
		err = failedEarlier(err) // never a second flush after a failed one
	} else {
		g.flushes.Add(1)
		err = fss.SyncFS(r.files)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil && g.mu.err == nil {
		g.mu.err = err
	}
	r.err = err
	close(r.done)
	if nx := ln.next; nx != nil {
		ln.next = nil // nx is frozen: later Logs start a new round
		close(nx.start)
		return
	}
	ln.running = false
	g.mu.lanes = removeLane(g.mu.lanes, ln)
}

// laneLocked returns fsys's lane, adding it if missing. fsys's type is
// comparable.
func (g *SyncGroup) laneLocked(fsys FS) *syncLane {
	for _, ln := range g.mu.lanes {
		if ln.fs == fsys {
			return ln
		}
	}
	ln := &syncLane{fs: fsys}
	g.mu.lanes = append(g.mu.lanes, ln)
	return ln
}

func removeLane(lanes []*syncLane, ln *syncLane) []*syncLane {
	for i, x := range lanes {
		if x == ln {
			last := len(lanes) - 1
			lanes[i] = lanes[last]
			lanes[last] = nil
			return lanes[:last]
		}
	}
	return lanes
}

func failedEarlier(err error) error {
	return fmt.Errorf("an earlier flush of the sync group failed: %w", err)
}

// syncFiles makes files durable: with one SyncFS if fsys implements
// FSSyncer, else with a Sync of each.
func syncFiles(fsys FS, files []File) error {
	if fss, ok := fsys.(FSSyncer); ok {
		return fss.SyncFS(files)
	}
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}
