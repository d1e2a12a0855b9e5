package replication

import (
	"encoding/binary"
	"errors"
)

// Producer sequences make retried appends idempotent. Every batch Append
// writes carries its producer's ID (the node's ID), epoch (the node's meta
// incarnation) and the sequence numbers of its first and last record, in
// the log's batch header. Every replica, leader or follower, remembers the
// last dedupWindow batches of each producer per partition, from the
// batches it appends (and, after a restart, from its producer snapshot
// and the log after it, see prodsnap.go); a leader answers a batch it
// already holds with the offsets it got the first time instead of writing
// it again. This is Kafka's idempotent producer, reduced to what replog's
// own retries need.
//
// A batch is the same batch only if its sequences and its checksum (which
// covers its records, timestamps and producer fields, not the offsets the
// leader stamps) match: every attempt of one Append sends the same bytes,
// so a retry matches; different data under a sequence already held is
// refused (errSequenceConflict), never answered with the other batch's
// offsets.
//
// Unlike Kafka, a gap in the sequence is accepted: concurrent Append calls
// on one node are not ordered with each other, and a call abandoned by its
// caller leaves a gap for good. A batch is a duplicate only if the window
// holds it. A producer sends a batch only while fewer than maxInFlight
// batches submitted before it are unanswered (producer.pickLocked), so
// while one batch is unanswered at most maxInFlight-1 newer ones and
// maxInFlight-1 older ones are written after it: 126, fewer than
// dedupWindow. A retry is therefore either in the window or newer than
// some of it, never refused as too old nor written twice, however the
// sends and answers on the way are delayed or reordered. A message of a
// call its caller gave up on may still be on its way when the producer
// moves its window on (the producer sends nothing more for a finished
// call, but cannot recall a message): to one leader, the transport
// delivers it before the later calls' messages (messages between two
// nodes arrive in order); and a leader takes no append sent for an older
// leader epoch than its own (replica.enqueue), so one delayed at an old
// leader that leads again cannot be written after batches that went to
// the leaders in between. What remains is a send that had passed the
// finished check (producer.send) when its goroutine was descheduled, for
// as long as it takes more than a window of later calls to be answered.

// dedupWindow is how many recent batches per producer a replica remembers.
const dedupWindow = 128

// maxInFlight is how many batches a node keeps outstanding per partition.
const maxInFlight = dedupWindow / 2

// seqMask: sequences run from 0 to MaxInt32 and wrap to 0.
const seqMask = 1<<31 - 1

var (
	// errSequenceTooOld: the batch's sequence is older than every batch
	// remembered: the replica cannot tell whether it was written.
	errSequenceTooOld = errors.New("replication: producer sequence too old to deduplicate")
	// errSequenceConflict: a remembered batch starts at the same sequence
	// but ends elsewhere or holds other data (another checksum).
	errSequenceConflict = errors.New("replication: producer sequence reused for another batch")
	// errProducerFenced: the batch comes from an older epoch of a producer
	// that has since restarted.
	errProducerFenced = errors.New("replication: producer epoch is fenced")
	// errSequenceRefused is what a producer learns of any of the three
	// above (the wire has one code for them): the attempt refused was not
	// written, but an earlier attempt of the same Append may have been
	// (a retry found too old to deduplicate).
	errSequenceRefused = errors.New("replication: the leader refused the producer sequence (fenced producer epoch, sequence reused for other data, or too old to deduplicate); this attempt was not written, an earlier one may have been")
)

// seqBatch is one batch a replica holds for a producer.
type seqBatch struct {
	firstSeq, lastSeq int32
	baseOffset        int64
	lastOffset        int64
	crc               uint32 // the batch's checksum: tells a retry from other data
}

// producerState is a replica's memory of one producer on one partition.
// The zero value knows nothing: the first batch it sees is accepted as is.
type producerState struct {
	epoch   int16
	batches []seqBatch // ring of up to dedupWindow; batches[(next-1) mod len] is the newest
	next    int        // where the next entry goes once the ring is full
}

// epochAfter reports whether producer epoch a is newer than b. Epochs are
// a node's incarnation modulo 2^15 (see Manager.checkRegistered) and wrap
// to 0: a is newer if it is less than half the epoch space ahead of b, so
// that a node's 32768th registration is not fenced for good as older than
// its 32767th.
func epochAfter(a, b int16) bool {
	d := (int32(a) - int32(b)) & 0x7fff
	return d != 0 && d < 1<<14
}

// nextSeq is the sequence after s; sequences wrap from MaxInt32 to 0.
func nextSeq(s int32) int32 { return int32((int64(s) + 1) & seqMask) }

// lastSeqOf is the last sequence of a batch of count records from first.
func lastSeqOf(first, count int32) int32 {
	return int32((int64(first) + int64(count) - 1) & seqMask)
}

// seqBefore reports whether sequence a comes before b, modulo the wrap: a
// is before b if b is less than half the sequence space ahead of it.
func seqBefore(a, b int32) bool {
	d := (int64(b) - int64(a)) & seqMask
	return d != 0 && d < 1<<30
}

// check classifies a batch with the given producer epoch, sequences and
// checksum. It returns (prev, true, nil) for a batch already held, whose
// offsets are in prev; (_, false, nil) for a batch to write (then call
// record); and an error for a batch that must be refused.
func (p *producerState) check(epoch int16, firstSeq, lastSeq int32, crc uint32) (prev seqBatch, dup bool, err error) {
	if len(p.batches) == 0 || epochAfter(epoch, p.epoch) {
		return seqBatch{}, false, nil
	}
	if epoch != p.epoch {
		return seqBatch{}, false, errProducerFenced
	}
	oldest := p.batches[0].firstSeq
	for _, b := range p.batches {
		if b.firstSeq == firstSeq {
			if b.lastSeq != lastSeq || b.crc != crc {
				return seqBatch{}, false, errSequenceConflict
			}
			return b, true, nil
		}
		if seqBefore(b.firstSeq, oldest) {
			oldest = b.firstSeq
		}
	}
	if len(p.batches) == dedupWindow && seqBefore(firstSeq, oldest) {
		return seqBatch{}, false, errSequenceTooOld
	}
	return seqBatch{}, false, nil
}

// batchCRC returns an encoded batch's checksum (package log's header).
func batchCRC(b []byte) uint32 { return binary.BigEndian.Uint32(b[batchCRCOffset:]) }

// record remembers a batch held for the producer at epoch. A newer epoch
// forgets the older epoch's batches.
func (p *producerState) record(epoch int16, b seqBatch) {
	if len(p.batches) > 0 && epochAfter(epoch, p.epoch) {
		p.batches, p.next = p.batches[:0], 0
	}
	p.epoch = epoch
	if len(p.batches) < dedupWindow {
		p.batches = append(p.batches, b)
		return
	}
	p.batches[p.next] = b
	p.next = (p.next + 1) % dedupWindow
}

// truncate forgets the batches that do not end below offset (a follower
// truncated its log there; a crash ended it there).
func (p *producerState) truncate(offset int64) {
	n := len(p.batches)
	kept := make([]seqBatch, 0, n)
	for i := range n {
		// Oldest first: the ring starts at next once full.
		if b := p.batches[(p.next+i)%n]; b.lastOffset < offset {
			kept = append(kept, b)
		}
	}
	p.batches, p.next = kept, 0
}
