package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"
)

// TestJoinBatches: a joined batch is byte for byte the batch EncodeBatch
// makes of all the records at once (with the timestamps they were given),
// under the first batch's header, for random records whose timestamps
// span the storable range.
func TestJoinBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 300 {
		h := BatchHeader{BaseOffset: rng.Int64N(1 << 40), LeaderEpoch: rng.Int32N(9), ProducerID: 5, ProducerEpoch: 2, BaseSequence: rng.Int32N(1 << 30)}
		var raws [][]byte
		var all []Record
		for j := range 1 + rng.IntN(5) {
			now := testNow.Add(time.Duration(j) * time.Millisecond)
			raw, err := EncodeBatch(nil, NewBatchHeader(rng.Int64N(1<<40), 0), randomRecords(rng), now)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := Batch(raw).Records(nil)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, recs...)
			raws = append(raws, raw)
		}
		// The first batch carries the producer's header.
		first, err := EncodeBatch(nil, h, all[:Batch(raws[0]).Count()], testNow)
		if err != nil {
			t.Fatal(err)
		}
		raws[0] = first
		want, err := EncodeBatch(nil, h, all, testNow)
		if err != nil {
			t.Fatal(err)
		}
		got, err := JoinBatches([]byte("prefix"), raws)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
			t.Fatalf("iteration %d: joined batch differs from the batch of all records", iter)
		}
		if err := Batch(got[6:]).Validate(); err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
	}
}

// TestJoinBatchesRefuses: damaged or compressed batches and an empty list
// are refused, and dst comes back as it was.
func TestJoinBatchesRefuses(t *testing.T) {
	good, err := EncodeBatch(nil, NewBatchHeader(0, 0), []Record{{Value: []byte("a")}, {Value: []byte("b")}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	compressed := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(compressed[offAttributes:], 1)
	shortRecord := append([]byte(nil), good...)
	shortRecord[batchHeaderSize] = 0x7e // first record's length: 63, past the batch
	trailing := append(append([]byte(nil), good...), 0)
	binary.BigEndian.PutUint32(trailing[offLength:], uint32(len(trailing)-lengthFieldEnd))
	cases := []struct {
		name    string
		batches [][]byte
		want    error
	}{
		{"none", nil, ErrInvalidRecord},
		{"truncated first", [][]byte{good[:len(good)-1]}, ErrCorruptBatch},
		{"truncated second", [][]byte{good, good[:20]}, ErrCorruptBatch},
		{"compressed", [][]byte{good, compressed}, ErrCorruptBatch},
		{"record length past the end", [][]byte{good, shortRecord}, ErrCorruptBatch},
		{"trailing bytes", [][]byte{good, trailing}, ErrCorruptBatch},
	}
	for _, c := range cases {
		dst := []byte("keep")
		out, err := JoinBatches(dst, c.batches)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst became %q", c.name, out)
		}
	}
}

// FuzzJoinBatches: no input panics JoinBatches, and a batch that validates
// joined with itself gives a valid batch of its records twice.
func FuzzJoinBatches(f *testing.F) {
	for _, recs := range [][]Record{
		{{Value: []byte("a")}},
		{{Key: []byte("k"), Value: []byte("v"), Timestamp: testNow.Add(-time.Hour)}, {Headers: []Header{{Key: "h", Value: []byte("x")}}}},
	} {
		buf, err := EncodeBatch(nil, NewBatchHeader(7, 0), recs, testNow)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
		f.Add(buf[:len(buf)-1])
	}
	f.Add(make([]byte, batchHeaderSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		joined, err := JoinBatches(nil, [][]byte{data, data})
		b := append(Batch(nil), data...)
		if len(b) >= batchHeaderSize {
			binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
		}
		if b.Validate() != nil {
			return
		}
		if err != nil {
			t.Fatalf("valid batch not joined: %v", err)
		}
		if err := Batch(joined).Validate(); err != nil {
			t.Fatalf("joined batch invalid: %v", err)
		}
		recs, _ := b.Records(nil)
		got, err := Batch(joined).Records(nil)
		if err != nil || len(got) != 2*len(recs) {
			t.Fatalf("joined batch holds %d records (%v), want %d", len(got), err, 2*len(recs))
		}
		for i, r := range got {
			want := recs[i%len(recs)]
			want.Offset = b.BaseOffset() + int64(i)
			if !sameRecord(r, want) {
				t.Fatalf("record %d: %+v, want %+v", i, r, want)
			}
		}
	})
}
