package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

// Producer snapshots. A replica that restarts must know the batches its
// producers may still retry, or it writes a retry twice once it leads (see
// dedup.go). Reading the log's tail finds them only if the tail is long
// enough: a producer's retry may come after any amount of other
// producers' writes. So, as Kafka does, a replica persists its producer
// table: every snapshotEvery bytes of batches it records, it writes the
// table and the offset it covers (every batch below it is in the table)
// to producersFile in its directory, and a restart reads the snapshot,
// then records the log's batches from that offset (it reads the log's last
// rebuildBytes in any case: that read finds damage in sealed segments).
//
// A snapshot may cover batches the log has not synced: after a crash the
// log ends below them. The rebuild then drops the entries at or past the
// log's end and, before the replica takes any batch, replaces the file
// with the rebuilt table at the log's end: new batches will take those
// offsets, and a later restart must not trust the old entries for them. A
// truncation of the log would likewise leave entries for batches the log
// no longer holds, below later data: before it truncates, the replica
// replaces the snapshot with its table cut at the truncation's offset
// (cutSnapshot). A log started over at its leader's log start (ResetTo)
// forgets its producers, and its snapshot (dropSnapshot).
//
// What those rules cannot order, a snapshot write that outlived its
// replica (stalled past Close) and landed under the next replica of the
// directory in this process, the rebuild still finds: batches a log lost
// are the newest its table recorded, so a rebuild checks each producer's
// newest entry against the batch the log holds at its offset
// (checkSnapshot), and a mismatch makes it distrust the whole snapshot.
//
// Every write and removal of the snapshot runs under snapIO: one at a
// time, in order, and given up after SyncTimeout (ErrStorageStalled) on a
// stalled disk, as the logs' syncs are.

// producersFile is the snapshot's name in the replica's directory.
const producersFile = "producers.snapshot"

// snapshotEvery is how many bytes of recorded batches separate two
// snapshots: a restart reads about this much of the log after its
// snapshot.
const snapshotEvery = 1 << 20

// maxSnapshotRead bounds the log a restart reads after its snapshot (one
// that lagged for long: snapshots failed to be written): past it, the
// rebuild reads only the last maxSnapshotRead bytes after the snapshot's
// entries.
const maxSnapshotRead = 64 << 20

// The snapshot's format (big-endian): magic, version, the covered offset,
// the producer count; per producer in ascending ID order its ID, epoch and
// batch count, then its batches oldest first (first and last sequence,
// base and last offset, checksum); last, a CRC-32C of everything before
// it.
const (
	snapshotMagic   = "RPRODSN\x00"
	snapshotVersion = 1
	snapshotFixed   = 8 + 4 + 8 + 4
	snapProducer    = 8 + 2 + 4
	snapBatch       = 4 + 4 + 8 + 8 + 4
)

var errBadSnapshot = errors.New("replication: bad producer snapshot")

// encodeProducerSnapshot serializes producers as covering every batch
// below offset; entries at or past it are left out.
func encodeProducerSnapshot(offset int64, producers map[int64]*producerState) []byte {
	// Each producer's batches oldest first (a full ring starts at next),
	// without those past offset: a leader's round that got offsets and
	// failed, say. Producers left with none are not written.
	kept := map[int64][]seqBatch{}
	n := snapshotFixed + 4
	for id, p := range producers {
		var bs []seqBatch
		for i := range p.batches {
			if sb := p.batches[(p.next+i)%len(p.batches)]; sb.lastOffset < offset {
				bs = append(bs, sb)
			}
		}
		if id >= 0 && len(bs) > 0 {
			kept[id] = bs
			n += snapProducer + len(bs)*snapBatch
		}
	}
	ids := slices.Sorted(maps.Keys(kept))
	be := binary.BigEndian
	b := make([]byte, 0, n)
	b = append(b, snapshotMagic...)
	b = be.AppendUint32(b, snapshotVersion)
	b = be.AppendUint64(b, uint64(offset))
	b = be.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		b = be.AppendUint64(b, uint64(id))
		b = be.AppendUint16(b, uint16(producers[id].epoch))
		b = be.AppendUint32(b, uint32(len(kept[id])))
		for _, sb := range kept[id] {
			b = be.AppendUint32(b, uint32(sb.firstSeq))
			b = be.AppendUint32(b, uint32(sb.lastSeq))
			b = be.AppendUint64(b, uint64(sb.baseOffset))
			b = be.AppendUint64(b, uint64(sb.lastOffset))
			b = be.AppendUint32(b, sb.crc)
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeProducerSnapshot parses and checks a snapshot: checksum, sizes,
// producers in ascending order with one to dedupWindow batches each,
// sequences in range, and each batch's offsets in order (base at most
// last) and below the covered offset. Errors wrap errBadSnapshot.
func decodeProducerSnapshot(b []byte) (offset int64, producers map[int64]*producerState, err error) {
	bad := func(what string) (int64, map[int64]*producerState, error) {
		return 0, nil, fmt.Errorf("%w: %s", errBadSnapshot, what)
	}
	be := binary.BigEndian
	if len(b) < snapshotFixed+4 || string(b[:8]) != snapshotMagic {
		return bad("no snapshot header")
	}
	if crc32.Checksum(b[:len(b)-4], castagnoli) != be.Uint32(b[len(b)-4:]) {
		return bad("checksum mismatch")
	}
	if v := be.Uint32(b[8:]); v != snapshotVersion {
		return bad(fmt.Sprintf("version %d", v))
	}
	offset = int64(be.Uint64(b[12:]))
	if offset < 0 {
		return bad("negative offset")
	}
	count := int(be.Uint32(b[20:]))
	rest := b[snapshotFixed : len(b)-4]
	producers = map[int64]*producerState{}
	prevID := int64(-1)
	for range count {
		if len(rest) < snapProducer {
			return bad("truncated producer")
		}
		id := int64(be.Uint64(rest))
		if id <= prevID {
			return bad("producers out of order")
		}
		prevID = id
		p := &producerState{epoch: int16(be.Uint16(rest[8:]))}
		nb := int(be.Uint32(rest[10:]))
		rest = rest[snapProducer:]
		if nb == 0 || nb > dedupWindow || len(rest) < nb*snapBatch {
			return bad("bad batch count")
		}
		p.batches = make([]seqBatch, nb)
		for i := range p.batches {
			sb := seqBatch{
				firstSeq: int32(be.Uint32(rest)), lastSeq: int32(be.Uint32(rest[4:])),
				baseOffset: int64(be.Uint64(rest[8:])), lastOffset: int64(be.Uint64(rest[16:])),
				crc: be.Uint32(rest[24:]),
			}
			rest = rest[snapBatch:]
			if sb.firstSeq < 0 || sb.lastSeq < 0 || sb.baseOffset < 0 || sb.lastOffset < sb.baseOffset || sb.lastOffset >= offset {
				return bad("bad batch")
			}
			p.batches[i] = sb
		}
		producers[id] = p
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	return offset, producers, nil
}

// readProducerSnapshot reads the snapshot in dir. A missing one is (-1,
// nil, nil); a damaged one is an error wrapping errBadSnapshot.
func readProducerSnapshot(fsys wal.FS, dir string) (int64, map[int64]*producerState, error) {
	b, err := wal.ReadFile(fsys, filepath.Join(dir, producersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return decodeProducerSnapshot(b)
}

// producersRecordedLocked counts n bytes of batches just recorded in the
// producer table, which now covers every batch below offset, and queues a
// snapshot once snapshotEvery bytes have been recorded since the last.
func (r *replica) producersRecordedLocked(n int, offset int64) {
	r.mu.snapDue += n
	r.mu.snapDirty = true
	if r.mu.snapDue < snapshotEvery || r.mu.closed {
		return
	}
	r.mu.snapDue = 0
	r.mu.snapPending = encodeProducerSnapshot(offset, r.mu.producers)
	r.mu.snapPendingGen = r.mu.snapGen
	if !r.mu.snapWriting && r.m.spawn(r.writeSnapshots) {
		r.mu.snapWriting = true
	}
}

// writeSnapshots writes the queued snapshot (a newer one replaces it while
// it waits) until none is queued. Run by one goroutine at a time per
// replica.
func (r *replica) writeSnapshots() {
	for {
		r.mu.Lock()
		b, gen := r.mu.snapPending, r.mu.snapPendingGen
		r.mu.snapPending = nil
		if b == nil {
			r.mu.snapWriting = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		err := r.snapIO(func() error {
			r.mu.Lock()
			current := gen == r.mu.snapGen && !r.mu.closed
			r.mu.Unlock()
			if !current {
				return nil // dropped since (a truncation), or closing
			}
			return r.writeSnapshot(b)
		})
		if err != nil {
			r.m.cfg.Logger.Warn("replication: writing the producer snapshot",
				"topic", r.topic, "partition", r.key.partition, "err", err)
		}
	}
}

// writeSnapshot replaces the replica's snapshot with b, durably.
func (r *replica) writeSnapshot(b []byte) error { return writeProducerSnapshot(r.m.cfg.FS, r.dir, b) }

// writeProducerSnapshot replaces the snapshot in dir with b, durably.
func writeProducerSnapshot(fsys wal.FS, dir string, b []byte) error {
	return wal.WriteFileAtomic(fsys, filepath.Join(dir, producersFile), b)
}

// cutSnapshot replaces the replica's snapshot, durably, with its producer
// table cut at offset (every entry at or past it left out), and discards
// the snapshot queued meanwhile: a truncation to offset follows. Entries
// below offset hold whether a crash comes before the truncation or after
// it, and a restart then has the producers' batches, however old, that a
// retry may repeat (a rebuild from the log's tail alone would miss the
// older ones).
func (r *replica) cutSnapshot(offset int64) error {
	r.mu.Lock()
	r.discardQueuedSnapshotLocked()
	b := encodeProducerSnapshot(offset, r.mu.producers)
	r.mu.Unlock()
	return r.snapIO(func() error { return r.writeSnapshot(b) })
}

// dropSnapshot removes the replica's snapshot, durably, and discards the
// queued one, before the log is truncated or started over: their entries
// may name batches the log is about to lose. An error (the storage failed
// or stalled) must stop the truncation. Called without mu.
func (r *replica) dropSnapshot() error {
	r.mu.Lock()
	r.discardQueuedSnapshotLocked()
	r.mu.Unlock()
	return r.snapIO(func() error { return removeSnapshot(r.m.cfg.FS, r.dir) })
}

// discardQueuedSnapshotLocked drops the snapshot queued for writing and
// makes a write not yet started skip (snapGen), before a truncation or a
// start over replaces the snapshot (snapIO runs that after any write
// already under way).
func (r *replica) discardQueuedSnapshotLocked() {
	r.mu.snapGen++
	r.mu.snapPending = nil
	r.mu.snapDue = 0
}

// removeSnapshot removes the snapshot in dir, if any, durably.
func removeSnapshot(fsys wal.FS, dir string) error {
	name := filepath.Join(dir, producersFile)
	if err := fsys.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("replication: remove %s: %w", name, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("replication: remove %s: sync dir: %w", name, err)
	}
	return nil
}

// snapIO runs op, a write or removal of the replica's snapshot, after the
// one before it has returned, and waits for it at most SyncTimeout: past
// that it returns ErrStorageStalled, and op goes on alone (its goroutine
// ends when the storage returns) holding back the next ones, so that they
// still run in order.
func (r *replica) snapIO(op func() error) error {
	stalled := func() error {
		return fmt.Errorf("%w: producer snapshot of %s/%d blocked for more than %v",
			wal.ErrStorageStalled, r.topic, r.key.partition, r.m.cfg.SyncTimeout)
	}
	timer := time.NewTimer(r.m.cfg.SyncTimeout)
	defer timer.Stop()
	select {
	case r.snapSem <- struct{}{}:
	case <-timer.C:
		return stalled()
	}
	done := make(chan error, 1)
	go func() {
		done <- op()
		<-r.snapSem
	}()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return stalled()
	}
}

// checkSnapshot checks each producer's newest entry in snap against the
// batch l holds at its offset (producer, first sequence, checksum). The
// batches a log lost (an unsynced tail, a round that was never written)
// are the newest the table recorded when the snapshot was taken: a
// snapshot that names one of them at an offset the log has since filled
// with another batch fails here. Entries below the log's start are not
// checked.
func checkSnapshot(l *log.Log, snap map[int64]*producerState) error {
	var buf []byte
	for id, ps := range snap {
		if len(ps.batches) == 0 {
			continue
		}
		sb := ps.batches[(ps.next+len(ps.batches)-1)%len(ps.batches)]
		if sb.baseOffset < l.LogStartOffset() {
			continue
		}
		raw, err := l.ReadBatches(buf[:0], sb.baseOffset, l.LogEndOffset(), 1) // the one batch there
		buf = raw
		if err != nil {
			return fmt.Errorf("%w: reading the batch at %d: %w", errBadSnapshot, sb.baseOffset, err)
		}
		b, _, err := log.SplitBatch(raw)
		if err != nil || b.BaseOffset() != sb.baseOffset || b.ProducerID() != id ||
			b.BaseSequence() != sb.firstSeq || batchCRC(b) != sb.crc {
			return fmt.Errorf("%w: producer %d's batch at %d is not in the log", errBadSnapshot, id, sb.baseOffset)
		}
	}
	return nil
}
