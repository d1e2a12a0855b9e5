package replication

import (
	"errors"
	"testing"
)

func TestProducerStateDedup(t *testing.T) {
	var p producerState
	write := func(epoch int16, first, last int32, base int64) {
		t.Helper()
		if _, dup, err := p.check(epoch, first, last); err != nil || dup {
			t.Fatalf("check(%d, %d..%d) = dup %v, %v; want a new batch", epoch, first, last, dup, err)
		}
		p.record(epoch, seqBatch{first, last, base, base + int64(last-first)})
	}
	write(1, 0, 9, 100)
	write(1, 10, 19, 110)

	// A retry of a written batch gets its original offsets back.
	prev, dup, err := p.check(1, 0, 9)
	if err != nil || !dup || prev.baseOffset != 100 || prev.lastOffset != 109 {
		t.Fatalf("retry of 0..9: %+v dup %v err %v", prev, dup, err)
	}
	// A gap is refused: batch 20..29 was lost.
	if _, _, err := p.check(1, 30, 39); !errors.Is(err, errOutOfOrderSequence) {
		t.Fatalf("gap: err = %v", err)
	}
	// An older epoch is fenced; a newer one starts afresh.
	if _, _, err := p.check(0, 20, 29); !errors.Is(err, errProducerFenced) {
		t.Fatalf("old epoch: err = %v", err)
	}
	write(2, 0, 0, 120)
	if _, dup, _ := p.check(2, 0, 9); dup {
		t.Fatal("batch of the old epoch remembered under the new one")
	}
}

func TestProducerStateWindow(t *testing.T) {
	var p producerState
	for i := range int32(dedupWindow + 2) {
		if _, dup, err := p.check(0, i, i); err != nil || dup {
			t.Fatalf("batch %d: dup %v err %v", i, dup, err)
		}
		p.record(0, seqBatch{i, i, int64(i), int64(i)})
	}
	// The two oldest batches fell out of the window: a retry of them is
	// out of order now, never written twice.
	for i := range int32(2) {
		if _, _, err := p.check(0, i, i); !errors.Is(err, errOutOfOrderSequence) {
			t.Fatalf("batch %d outside the window: err = %v", i, err)
		}
	}
	for i := int32(2); i < dedupWindow+2; i++ {
		if prev, dup, err := p.check(0, i, i); err != nil || !dup || prev.baseOffset != int64(i) {
			t.Fatalf("batch %d inside the window: %+v dup %v err %v", i, prev, dup, err)
		}
	}
}

func TestNextSeqWraps(t *testing.T) {
	var p producerState
	const maxSeq = 1<<31 - 1
	p.record(0, seqBatch{maxSeq - 1, maxSeq, 0, 1})
	if _, dup, err := p.check(0, 0, 4); err != nil || dup {
		t.Fatalf("sequence after MaxInt32: dup %v err %v", dup, err)
	}
}
