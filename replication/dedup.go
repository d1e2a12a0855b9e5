package replication

import "errors"

// Producer sequences make retried appends idempotent. Every batch that crosses
// the network (forwarded to a leader, or retried after a lost answer or a
// leader change) carries its producer's ID, epoch and the sequence numbers of
// its first and last record. A partition leader remembers the last
// dedupWindow batches of each producer; a batch it has already written is
// answered with the offsets it got the first time instead of being written
// again. This is Kafka's idempotent producer, reduced to what replog's own
// retries need.

// dedupWindow is how many recent batches per producer a leader remembers:
// a producer must not have more than this many batches in flight to one
// partition at once.
const dedupWindow = 5

var (
	// errOutOfOrderSequence: the batch's first sequence is neither the next
	// one expected nor a batch remembered: an earlier batch was lost and the
	// producer must not skip it.
	errOutOfOrderSequence = errors.New("replication: out-of-order producer sequence")
	// errProducerFenced: the batch comes from an older epoch of a producer
	// that has since restarted.
	errProducerFenced = errors.New("replication: producer epoch is fenced")
)

// seqBatch is one batch a leader wrote for a producer.
type seqBatch struct {
	firstSeq, lastSeq int32
	baseOffset        int64
	lastOffset        int64
}

// producerState is a leader's memory of one producer on one partition.
// The zero value knows nothing: the first batch it sees is accepted as is.
type producerState struct {
	epoch   int16
	batches [dedupWindow]seqBatch // ring; batches[(next-1) mod n] is the newest
	n       int                   // how many entries are valid
	next    int                   // where the next entry goes
}

// nextSeq is the sequence after s; sequences wrap from MaxInt32 to 0.
func nextSeq(s int32) int32 {
	if s == 1<<31-1 {
		return 0
	}
	return s + 1
}

// check classifies a batch with the given producer epoch and sequences.
// It returns (prev, true, nil) for a batch already written, whose offsets
// are in prev; (_, false, nil) for a batch to write (then call record);
// and an error for a batch that must be refused.
func (p *producerState) check(epoch int16, firstSeq, lastSeq int32) (prev seqBatch, dup bool, err error) {
	if p.n == 0 || epoch > p.epoch {
		return seqBatch{}, false, nil
	}
	if epoch < p.epoch {
		return seqBatch{}, false, errProducerFenced
	}
	for i := range p.n {
		if b := p.batches[i]; b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b, true, nil
		}
	}
	newest := p.batches[(p.next+dedupWindow-1)%dedupWindow]
	if firstSeq != nextSeq(newest.lastSeq) {
		return seqBatch{}, false, errOutOfOrderSequence
	}
	return seqBatch{}, false, nil
}

// record remembers a batch written for the producer at epoch. A newer epoch
// forgets the older epoch's batches.
func (p *producerState) record(epoch int16, b seqBatch) {
	if p.n > 0 && epoch > p.epoch {
		p.n, p.next = 0, 0
	}
	p.epoch = epoch
	p.batches[p.next] = b
	p.next = (p.next + 1) % dedupWindow
	p.n = min(p.n+1, dedupWindow)
}
