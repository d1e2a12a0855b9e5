package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

// snapTable is a producer table with one producer whose ring wrapped and
// one with a few batches.
func snapTable() map[int64]*producerState {
	a, b := &producerState{}, &producerState{}
	for i := range int64(dedupWindow + 5) {
		a.record(3, seqBatch{firstSeq: int32(10 * i), lastSeq: int32(10*i + 9), baseOffset: 20 * i, lastOffset: 20*i + 9, crc: uint32(i)})
	}
	for i := range int64(3) {
		b.record(1, seqBatch{firstSeq: int32(i), lastSeq: int32(i), baseOffset: 20*i + 10, lastOffset: 20*i + 10, crc: 7})
	}
	return map[int64]*producerState{1: a, 2: b, 9: {}}
}

// oldestFirst lists a producer's batches oldest first.
func oldestFirst(p *producerState) []seqBatch {
	out := make([]seqBatch, len(p.batches))
	for i := range p.batches {
		out[i] = p.batches[(p.next+i)%len(p.batches)]
	}
	return out
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	table := snapTable()
	b := encodeProducerSnapshot(5000, table)
	offset, got, err := decodeProducerSnapshot(b)
	if err != nil || offset != 5000 {
		t.Fatalf("decode = %d, %v", offset, err)
	}
	if _, ok := got[9]; ok || len(got) != 2 {
		t.Fatalf("decoded producers %v: want 1 and 2 (9 has no batches)", slices.Collect(func(yield func(int64) bool) {
			for id := range got {
				if !yield(id) {
					return
				}
			}
		}))
	}
	for _, id := range []int64{1, 2} {
		want, have := table[id], got[id]
		if have.epoch != want.epoch || !slices.Equal(oldestFirst(have), oldestFirst(want)) {
			t.Fatalf("producer %d: decoded epoch %d %v, want %d %v", id, have.epoch, oldestFirst(have), want.epoch, oldestFirst(want))
		}
		// The decoded ring goes on as the original: the next batch evicts
		// the same oldest one.
		nb := seqBatch{firstSeq: 99999, lastSeq: 99999, baseOffset: 4990, lastOffset: 4990}
		want.record(want.epoch, nb)
		have.record(have.epoch, nb)
		if !slices.Equal(oldestFirst(have), oldestFirst(want)) {
			t.Fatalf("producer %d after one more batch: %v, want %v", id, oldestFirst(have), oldestFirst(want))
		}
	}
	if re := encodeProducerSnapshot(5000, got); !bytes.Equal(re, encodeProducerSnapshot(5000, table)) {
		t.Fatal("encoding the decoded table gives other bytes")
	}
}

func TestProducerSnapshotRejectsDamage(t *testing.T) {
	good := encodeProducerSnapshot(5000, snapTable())
	cases := map[string][]byte{
		"empty":       nil,
		"truncated":   good[:len(good)-10],
		"bit flipped": func() []byte { b := slices.Clone(good); b[40] ^= 1; return b }(),
		// Entries at or past the offset the snapshot covers.
		"entry past offset": func() []byte {
			b := encodeProducerSnapshot(5000, snapTable())
			binary.BigEndian.PutUint64(b[12:], 100)
			return binary.BigEndian.AppendUint32(b[:len(b)-4], crc32.Checksum(b[:len(b)-4], castagnoli))
		}(),
	}
	for name, b := range cases {
		if _, _, err := decodeProducerSnapshot(b); !errors.Is(err, errBadSnapshot) {
			t.Errorf("%s: err = %v, want errBadSnapshot", name, err)
		}
	}
}

// FuzzDecodeProducerSnapshot fuzzes the snapshot's body: the checksum is
// appended to each input, so that the fuzzer explores past it.
// TestProducerSnapshotLeavesOutEntriesPastOffset: entries that do not end
// below the covered offset (a leader's failed round) are not written.
func TestProducerSnapshotLeavesOutEntriesPastOffset(t *testing.T) {
	offset, got, err := decodeProducerSnapshot(encodeProducerSnapshot(100, snapTable()))
	if err != nil || offset != 100 {
		t.Fatalf("decode = %d, %v", offset, err)
	}
	n := 0
	for _, ps := range got {
		for _, b := range ps.batches {
			if b.lastOffset >= 100 {
				t.Fatalf("entry %+v past the covered offset 100", b)
			}
			n++
		}
	}
	// Producer 1: batches at 0, 20, 40, 60, 80 end below 100 (but its ring
	// dropped the first five); producer 2: 10, 30, 50.
	if n != 3 || got[1] != nil {
		t.Fatalf("%d entries kept, producer 1 %v; want producer 2's 3", n, got[1])
	}
}

func FuzzDecodeProducerSnapshot(f *testing.F) {
	for _, b := range [][]byte{encodeProducerSnapshot(5000, snapTable()), encodeProducerSnapshot(0, nil)} {
		f.Add(b[:len(b)-4])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.BigEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, castagnoli))
		offset, producers, err := decodeProducerSnapshot(b)
		if err != nil {
			if !errors.Is(err, errBadSnapshot) {
				t.Fatalf("error %v does not wrap errBadSnapshot", err)
			}
			return
		}
		// A snapshot that decodes is canonical: it encodes to itself.
		if re := encodeProducerSnapshot(offset, producers); !bytes.Equal(re, b) {
			t.Fatalf("decoded snapshot encodes to other bytes")
		}
	})
}

// snapLog opens a log holding three batches of producer 5, then about 7 MB
// (more than rebuildBytes) of producer 6's, and returns it with its FS.
func snapLog(t *testing.T) (*log.Log, wal.FS) {
	t.Helper()
	fsys := wal.NewMemFS()
	l, err := log.Open(log.Options{WAL: wal.Options{FS: fsys, Dir: "/p"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	for i := range int32(3) {
		h := log.BatchHeader{LeaderEpoch: 1, ProducerID: 5, ProducerEpoch: 2, BaseSequence: 10 * i}
		if _, _, err := l.AppendLeaderBatch(ctx, h, []log.Record{{Value: []byte("a")}}); err != nil {
			t.Fatal(err)
		}
	}
	recs := make([]log.Record, 100)
	for i := range recs {
		recs[i] = log.Record{Value: make([]byte, 100)}
	}
	for i := range int32(700) {
		h := log.BatchHeader{LeaderEpoch: 1, ProducerID: 6, ProducerEpoch: 1, BaseSequence: 100 * i}
		if _, _, err := l.AppendLeaderBatch(ctx, h, recs); err != nil {
			t.Fatal(err)
		}
	}
	return l, fsys
}

// snapReplica is a replica of the log l in /p on fsys (a Manager of its
// own, SyncTimeout one second), its producer table read from the whole log.
func snapReplica(t *testing.T, l *log.Log, fsys wal.FS) *replica {
	t.Helper()
	m := snapManager(fsys)
	m.cfg.SyncTimeout = time.Second
	r := &replica{m: m, log: l, dir: "/p", snapSem: make(chan struct{}, 1)}
	r.mu.producers = map[int64]*producerState{}
	if err := readProducers(l, 0, 0, r.mu.producers); err != nil {
		t.Fatal(err)
	}
	return r
}

func snapManager(fsys wal.FS) *Manager {
	return &Manager{cfg: Config{FS: fsys, Logger: slog.New(slog.DiscardHandler), Durability: wal.SyncAlways, SyncTimeout: time.Minute},
		ctx: context.Background()}
}

// TestRebuildProducersFromSnapshot: a producer whose last batches lie
// before the log's last rebuildBytes is known after a restart through the
// snapshot (and, without it, is not: the tail read alone misses it).
func TestRebuildProducersFromSnapshot(t *testing.T) {
	l, fsys := snapLog(t)
	m := snapManager(fsys)
	end := l.LogEndOffset()
	knows5 := func(producers map[int64]*producerState) bool {
		ps := producers[5]
		if ps == nil {
			return false
		}
		_, dup, err := ps.check(2, 20, 20, batchCRCOf(t, l, 2))
		return dup && err == nil
	}

	without := map[int64]*producerState{}
	if _, err := m.rebuildProducers(l, "/p", without); err != nil {
		t.Fatal(err)
	}
	if knows5(without) || without[6] == nil {
		t.Fatalf("without a snapshot: producer 5 known %v, 6 known %v; want only 6 (the tail)", knows5(without), without[6] != nil)
	}

	// A snapshot taken after producer 5's batches and a few of 6's: the
	// rest is read from the log after it.
	table := map[int64]*producerState{}
	if err := readProducers(l, 0, 0, table); err != nil {
		t.Fatal(err)
	}
	for _, ps := range table {
		ps.truncate(1003) // producer 5's 3 batches and 10 of producer 6's
	}
	if err := wal.WriteFileAtomic(fsys, filepath.Join("/p", producersFile), encodeProducerSnapshot(1003, table)); err != nil {
		t.Fatal(err)
	}
	with := map[int64]*producerState{}
	if _, err := m.rebuildProducers(l, "/p", with); err != nil {
		t.Fatal(err)
	}
	if !knows5(with) {
		t.Fatal("with the snapshot: producer 5's batch is not known")
	}
	newest := with[6].batches[(with[6].next+len(with[6].batches)-1)%len(with[6].batches)]
	if newest.lastOffset != end-1 || len(with[6].batches) != dedupWindow {
		t.Fatalf("with the snapshot: producer 6's newest batch ends at %d with %d batches, want %d and %d", newest.lastOffset, len(with[6].batches), end-1, dedupWindow)
	}
}

// batchCRCOf returns the checksum of the batch at offset.
func batchCRCOf(t *testing.T, l *log.Log, offset int64) uint32 {
	t.Helper()
	raw, err := l.ReadBatches(nil, offset, offset+1, 1<<20)
	if err != nil || len(raw) == 0 {
		t.Fatalf("read batch at %d: %v", offset, err)
	}
	return batchCRC(raw)
}

// TestRebuildProducersSnapshotPastLogEnd: a snapshot taken before a crash
// may cover batches the log lost (unsynced): their entries are dropped.
func TestRebuildProducersSnapshotPastLogEnd(t *testing.T) {
	l, fsys := snapLog(t)
	end := l.LogEndOffset()
	table := map[int64]*producerState{}
	if err := readProducers(l, 0, 0, table); err != nil {
		t.Fatal(err)
	}
	lost := seqBatch{firstSeq: 70000, lastSeq: 70099, baseOffset: end, lastOffset: end + 99}
	table[6].record(1, lost)
	if err := wal.WriteFileAtomic(fsys, filepath.Join("/p", producersFile), encodeProducerSnapshot(end+100, table)); err != nil {
		t.Fatal(err)
	}
	got := map[int64]*producerState{}
	if _, err := snapManager(fsys).rebuildProducers(l, "/p", got); err != nil {
		t.Fatal(err)
	}
	if _, dup, _ := got[6].check(1, lost.firstSeq, lost.lastSeq, 0); dup {
		t.Fatal("a batch past the log's end is still known")
	}
	for _, b := range got[6].batches {
		if b.baseOffset >= end {
			t.Fatalf("entry %+v past the log end %d", b, end)
		}
	}
}

// TestRebuildProducersIgnoresDamagedSnapshot: a damaged snapshot is not
// used; the table comes from the log's tail.
func TestRebuildProducersIgnoresDamagedSnapshot(t *testing.T) {
	l, fsys := snapLog(t)
	if err := wal.WriteFileAtomic(fsys, filepath.Join("/p", producersFile), []byte("not a snapshot")); err != nil {
		t.Fatal(err)
	}
	got := map[int64]*producerState{}
	if _, err := snapManager(fsys).rebuildProducers(l, "/p", got); err != nil {
		t.Fatal(err)
	}
	if got[6] == nil || len(got[6].batches) != dedupWindow || got[5] != nil {
		t.Fatalf("after a damaged snapshot: producers %v, want producer 6's tail only", got)
	}
}

// TestSnapshotWrittenAndCutAtTruncation: recording snapshotEvery bytes
// writes a snapshot of the table; truncating the log first replaces it,
// durably, with the table cut at the truncation.
func TestSnapshotWrittenAndCutAtTruncation(t *testing.T) {
	l, fsys := snapLog(t)
	r := snapReplica(t, l, fsys)
	m := r.m
	end := l.LogEndOffset()
	r.mu.Lock()
	r.producersRecordedLocked(snapshotEvery-1, end)
	r.mu.Unlock()
	m.wg.Wait()
	name := filepath.Join("/p", producersFile)
	if _, err := fsys.Stat(name); err == nil {
		t.Fatal("a snapshot before snapshotEvery bytes were recorded")
	}
	r.mu.Lock()
	r.producersRecordedLocked(1, end)
	r.mu.Unlock()
	m.wg.Wait() // the writer it spawned
	offset, snap, err := readProducerSnapshot(fsys, "/p")
	if err != nil || offset != end || snap[5] == nil || snap[6] == nil {
		t.Fatalf("snapshot after snapshotEvery bytes: offset %d (want %d), %v, err %v", offset, end, snap, err)
	}

	cut := end - 1000
	before := 0
	for _, ps := range snap {
		for _, b := range ps.batches {
			if b.lastOffset < cut {
				before++
			}
		}
	}
	if before == 0 || before == len(snap[5].batches)+len(snap[6].batches) {
		t.Fatalf("%d of the snapshot's batches below %d: the truncation must cut some", before, cut)
	}
	if err := r.truncateLog(cut); err != nil {
		t.Fatal(err)
	}
	fsys.(*wal.MemFS).Crash(wal.CrashOptions{})
	offset, snap, err = readProducerSnapshot(fsys, "/p")
	if err != nil || offset != cut {
		t.Fatalf("snapshot after a truncation to %d and a crash: offset %d, err %v; want it cut there, durably", cut, offset, err)
	}
	n := 0
	for _, ps := range snap {
		for _, b := range ps.batches {
			if b.lastOffset >= cut {
				t.Fatalf("the cut snapshot holds a batch at %d..%d, past the truncation at %d", b.baseOffset, b.lastOffset, cut)
			}
			n++
		}
	}
	if n != before {
		t.Fatalf("the cut snapshot holds %d batches, want the %d below the truncation", n, before)
	}
}

// TestCleanStopWritesSnapshot: a replica stopped cleanly leaves a snapshot
// covering its whole log, so its restart records nothing from the log.
func TestCleanStopWritesSnapshot(t *testing.T) {
	c := newTCluster(t, 3, nil)
	l, f := c.topicT()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	appendN(t, ctx, c, l, "a", 10)
	checkValues(t, values(c), names("a", 10))
	end := replicaOf(t, c, f).log.LogEndOffset()
	c.stop(f)
	offset, snap, err := readProducerSnapshot(c.fs[f], replicaDirIn(t, c.fs[f], "/data"))
	if err != nil || offset != end {
		t.Fatalf("snapshot after a clean stop: offset %d (log end %d), err %v", offset, end, err)
	}
	n := 0
	for _, ps := range snap {
		n += len(ps.batches)
	}
	if n != 10 {
		t.Fatalf("snapshot after a clean stop holds %d batches, want the 10 appended", n)
	}

	// A replica whose table has not changed since the snapshot it started
	// from writes none at its next stop (a node with many idle
	// partitions stops without a sync for each).
	dir := replicaDirIn(t, c.fs[f], "/data")
	c.start(f)
	c.waitReplica(f)
	if err := c.fs[f].Remove(filepath.Join(dir, producersFile)); err != nil {
		t.Fatal(err)
	}
	c.stop(f)
	if offset, _, err := readProducerSnapshot(c.fs[f], dir); err != nil || offset != -1 {
		t.Fatalf("an unchanged table was written again at stop: offset %d, %v", offset, err)
	}
}

// TestRestartedReplicaKnowsProducersBeyondTail: a replica that crashes and
// restarts after more than rebuildBytes of another producer's writes
// behind a producer's batches still knows those batches (from its periodic
// snapshot), so a retry of one, once it leads, is not written twice.
func TestRestartedReplicaKnowsProducersBeyondTail(t *testing.T) {
	c := newTCluster(t, 3, nil)
	l, f := c.topicT()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	appendN(t, ctx, c, f, "early", 3) // producer f, forwarded to the leader
	big := make([]log.Record, 50)
	for i := range big {
		big[i] = log.Record{Value: make([]byte, 10<<10)}
	}
	for range 12 { // 6 MB from producer l
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, big, AcksAll); err != nil {
			t.Fatal(err)
		}
	}
	c.fs[f].(*wal.MemFS).Crash(wal.CrashOptions{})
	c.stopCrashed(f)
	c.start(f)
	c.waitReplica(f)
	r := replicaOf(t, c, f)
	r.mu.Lock()
	ps := r.mu.producers[int64(f)]
	n := 0
	if ps != nil {
		n = len(ps.batches)
	}
	r.mu.Unlock()
	if n != 3 {
		t.Fatalf("after the restart the replica knows %d of producer %d's 3 batches", n, f)
	}
}

// TestSnapshotPastLogEndNotTrustedTwice: a snapshot written before a crash
// that took the log's unsynced tail covers offsets the log lost. The first
// restart drops those entries and replaces the file, so that after new
// batches take those offsets, a second crash and restart neither answers
// for the lost batches nor skips the new ones.
func TestSnapshotPastLogEndNotTrustedTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		durability := wal.SyncNever
		c := newTCluster(t, 3, func(_ uint64, cfg *Config) { cfg.Durability = durability })
		l, f := c.topicT()
		var g uint64
		for _, id := range c.ids {
			if id != l && id != f {
				g = id
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		big := make([]log.Record, 50)
		for i := range big {
			big[i] = log.Record{Value: make([]byte, 10<<10)}
		}
		for range 3 { // 1.5 MB from producer l: a snapshot on every replica
			if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, big, AcksAll); err != nil {
				t.Fatal(err)
			}
		}
		crashAll := func() {
			for _, id := range c.ids {
				c.fs[id].(*wal.MemFS).Crash(wal.CrashOptions{})
			}
			for _, id := range c.ids {
				c.stopCrashed(id)
			}
			durability = wal.SyncAlways
			for _, id := range c.ids {
				c.start(id)
			}
		}
		crashAll() // SyncNever: the logs lose what the snapshots cover
		c.waitFor("a leader", 60*time.Second, func() bool { return c.leader("t", 0) != 0 })
		appendN(t, ctx, c, g, "b", 3) // producer g, synced
		c.converged("t", 0)
		crashAll()
		for _, id := range c.ids {
			c.waitReplica(id)
		}
		for _, id := range c.ids {
			bad, known := staleEntries(t, replicaOf(t, c, id))
			for _, s := range bad {
				t.Errorf("node %d: %s", id, s)
			}
			if known[int64(g)] != 3 {
				t.Errorf("node %d knows %d of producer %d's 3 synced batches", id, known[int64(g)], g)
			}
		}
	})
}

// staleEntries lists the producer table entries of r whose offsets do not
// hold that producer's batch in r's log, and counts the entries of each
// producer.
func staleEntries(t *testing.T, r *replica) (bad []string, known map[int64]int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	known = map[int64]int{}
	for id, ps := range r.mu.producers {
		for _, sb := range ps.batches {
			known[id]++
			if sb.baseOffset < r.log.LogStartOffset() {
				continue
			}
			raw, err := r.log.ReadBatches(nil, sb.baseOffset, sb.lastOffset+1, 1<<22)
			if err != nil || len(raw) == 0 {
				bad = append(bad, fmt.Sprintf("producer %d seq %d at %d..%d: the log has nothing there (%v)", id, sb.firstSeq, sb.baseOffset, sb.lastOffset, err))
				continue
			}
			b, _, err := log.SplitBatch(raw)
			if err != nil || b.BaseOffset() != sb.baseOffset || b.ProducerID() != id || b.BaseSequence() != sb.firstSeq || batchCRC(b) != sb.crc {
				bad = append(bad, fmt.Sprintf("producer %d seq %d at %d..%d: the log holds producer %d seq %d at %d there",
					id, sb.firstSeq, sb.baseOffset, sb.lastOffset, b.ProducerID(), b.BaseSequence(), b.BaseOffset()))
			}
		}
	}
	return bad, known
}

// TestSnapshotStallIsBounded: a snapshot write blocked by a stalled disk
// does not block the truncation behind it past SyncTimeout (it fails with
// ErrStorageStalled, so the log is not truncated under a snapshot that may
// still land), and the write completes once the disk answers.
func TestSnapshotStallIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, mem := snapLog(t)
		stall := wal.NewStallFS(mem)
		r := snapReplica(t, l, stall)
		m := r.m
		stall.Stall()
		r.mu.Lock()
		r.producersRecordedLocked(snapshotEvery, l.LogEndOffset())
		r.mu.Unlock()
		synctest.Wait() // the write blocks in its sync
		if stall.Waiting() != 1 {
			t.Fatalf("%d syncs blocked, want the snapshot's", stall.Waiting())
		}
		start := time.Now()
		err := r.dropSnapshot()
		if !errors.Is(err, wal.ErrStorageStalled) || time.Since(start) != time.Second {
			t.Fatalf("dropSnapshot behind a stalled write: %v after %v, want ErrStorageStalled after 1s", err, time.Since(start))
		}
		stall.Release()
		m.wg.Wait()
		synctest.Wait() // the stalled write's goroutine ends
		if _, err := mem.Stat(filepath.Join("/p", producersFile)); err != nil {
			t.Fatalf("the stalled snapshot write did not complete once released: %v", err)
		}
	})
}
