package replication

import (
	"errors"
	"testing"
)

func TestProducerStateDedup(t *testing.T) {
	var p producerState
	write := func(epoch int16, first, last int32, base int64) {
		t.Helper()
		if _, dup, err := p.check(epoch, first, last, 0); err != nil || dup {
			t.Fatalf("check(%d, %d..%d) = dup %v, %v; want a new batch", epoch, first, last, dup, err)
		}
		p.record(epoch, seqBatch{first, last, base, base + int64(last-first), 0})
	}
	write(1, 0, 9, 100)
	write(1, 10, 19, 110)

	// A retry of a written batch gets its original offsets back.
	prev, dup, err := p.check(1, 0, 9, 0)
	if err != nil || !dup || prev.baseOffset != 100 || prev.lastOffset != 109 {
		t.Fatalf("retry of 0..9: %+v dup %v err %v", prev, dup, err)
	}
	// A gap is accepted (an abandoned call), and the gap filled later too.
	write(1, 30, 39, 120)
	write(1, 20, 29, 130)
	if _, dup, _ := p.check(1, 20, 29, 0); !dup {
		t.Fatal("gap-filling batch not remembered")
	}
	// The same first sequence with another end is refused.
	if _, _, err := p.check(1, 0, 5, 0); !errors.Is(err, errSequenceConflict) {
		t.Fatalf("conflict: err = %v", err)
	}
	// So are the same sequences with other data (another checksum): a
	// reused sequence is never answered with the held batch's offsets.
	if _, _, err := p.check(1, 0, 9, 1); !errors.Is(err, errSequenceConflict) {
		t.Fatalf("other data under held sequences: err = %v", err)
	}
	// An older epoch is fenced; a newer one starts afresh.
	if _, _, err := p.check(0, 20, 29, 0); !errors.Is(err, errProducerFenced) {
		t.Fatalf("old epoch: err = %v", err)
	}
	write(2, 0, 0, 140)
	if _, dup, _ := p.check(2, 0, 9, 0); dup {
		t.Fatal("batch of the old epoch remembered under the new one")
	}
}

func TestProducerStateWindow(t *testing.T) {
	var p producerState
	for i := range int32(dedupWindow + 2) {
		if _, dup, err := p.check(0, i, i, 0); err != nil || dup {
			t.Fatalf("batch %d: dup %v err %v", i, dup, err)
		}
		p.record(0, seqBatch{i, i, int64(i), int64(i), 0})
	}
	// The two oldest batches fell out of the window: a retry of them is
	// refused, never written twice.
	for i := range int32(2) {
		if _, _, err := p.check(0, i, i, 0); !errors.Is(err, errSequenceTooOld) {
			t.Fatalf("batch %d outside the window: err = %v", i, err)
		}
	}
	for i := int32(2); i < dedupWindow+2; i++ {
		if prev, dup, err := p.check(0, i, i, 0); err != nil || !dup || prev.baseOffset != int64(i) {
			t.Fatalf("batch %d inside the window: %+v dup %v err %v", i, prev, dup, err)
		}
	}
	// Newer than everything: new.
	if _, dup, err := p.check(0, dedupWindow+10, dedupWindow+10, 0); err != nil || dup {
		t.Fatalf("new batch: dup %v err %v", dup, err)
	}
}

func TestProducerStateTruncate(t *testing.T) {
	var p producerState
	for i := range int32(dedupWindow + 5) {
		p.record(0, seqBatch{i, i, int64(i), int64(i), 0})
	}
	p.truncate(dedupWindow)
	if _, dup, _ := p.check(0, dedupWindow-1, dedupWindow-1, 0); !dup {
		t.Fatal("batch below the truncation point forgotten")
	}
	if _, dup, err := p.check(0, dedupWindow, dedupWindow, 0); dup || err != nil {
		t.Fatalf("truncated batch: dup %v err %v; want new", dup, err)
	}
	// Recording after a truncation keeps working.
	p.record(0, seqBatch{dedupWindow, dedupWindow, 500, 500, 0})
	if prev, dup, _ := p.check(0, dedupWindow, dedupWindow, 0); !dup || prev.baseOffset != 500 {
		t.Fatalf("re-recorded batch: %+v dup %v", prev, dup)
	}
}

func TestSequenceWrap(t *testing.T) {
	const maxSeq = 1<<31 - 1
	if nextSeq(maxSeq) != 0 || lastSeqOf(maxSeq, 3) != 1 {
		t.Fatal("sequences do not wrap at MaxInt32")
	}
	if !seqBefore(maxSeq, 0) || seqBefore(0, maxSeq) || seqBefore(5, 5) {
		t.Fatal("seqBefore ignores the wrap")
	}
	var p producerState
	p.record(0, seqBatch{maxSeq - 1, maxSeq, 0, 1, 0})
	if _, dup, err := p.check(0, 0, 4, 0); err != nil || dup {
		t.Fatalf("sequence after MaxInt32: dup %v err %v", dup, err)
	}
}

// Producer epochs (incarnations modulo 2^15) wrap to 0: the epoch after
// 32767 is newer, not fenced as older for good; one half the epoch space
// behind is older.
func TestProducerEpochWrap(t *testing.T) {
	var ps producerState
	ps.record(32767, seqBatch{firstSeq: 0, lastSeq: 0, baseOffset: 0, lastOffset: 0, crc: 1})
	if _, dup, err := ps.check(0, 0, 0, 2); err != nil || dup {
		t.Fatalf("epoch 0 after 32767: dup %v, %v; want a new batch", dup, err)
	}
	ps.record(0, seqBatch{firstSeq: 0, lastSeq: 0, baseOffset: 1, lastOffset: 1, crc: 2})
	if len(ps.batches) != 1 || ps.epoch != 0 {
		t.Fatalf("after epoch 0: epoch %d, %d batches; want the older epoch's forgotten", ps.epoch, len(ps.batches))
	}
	if _, _, err := ps.check(32767, 5, 5, 3); !errors.Is(err, errProducerFenced) {
		t.Fatalf("epoch 32767 after 0: %v, want errProducerFenced", err)
	}
	if !epochAfter(1, 0) || epochAfter(0, 1) || epochAfter(3, 3) || !epochAfter(0, 32767) || epochAfter(16384, 0) {
		t.Fatal("epochAfter")
	}
}
