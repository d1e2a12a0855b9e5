package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"testing/quick"
	"time"
)

var testNow = time.Date(2026, 11, 26, 1, 2, 3, 456789012, time.UTC)

func sameRecord(a, b Record) bool {
	if a.Offset != b.Offset || !a.Timestamp.Equal(b.Timestamp) || len(a.Headers) != len(b.Headers) {
		return false
	}
	if !sameBytes(a.Key, b.Key) || !sameBytes(a.Value, b.Value) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !sameBytes(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// sameBytes is bytes.Equal that also tells nil from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestBatchRoundTripEveryField(t *testing.T) {
	recs := []Record{
		{Timestamp: testNow, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("x")}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}},
		{Key: nil, Value: nil}, // zero timestamp: now
		{Timestamp: testNow.Add(-time.Hour), Key: []byte{}, Value: []byte{}}, // earlier than base
		{Timestamp: time.Unix(0, 0), Key: []byte{0}, Value: bytes.Repeat([]byte("z"), 1000)},
	}
	h := BatchHeader{BaseOffset: 42, LeaderEpoch: 7, ProducerID: 99, ProducerEpoch: 3, BaseSequence: 11}
	now := testNow.Add(time.Minute)
	size, err := EncodedSize(recs, now)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := EncodeBatch([]byte("prefix"), h, recs, now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:6], []byte("prefix")) || len(buf)-6 != size {
		t.Fatalf("EncodeBatch wrote %d bytes after the prefix, EncodedSize said %d", len(buf)-6, size)
	}
	b := Batch(buf[6:])
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"BaseOffset", b.BaseOffset(), int64(42)},
		{"LastOffset", b.LastOffset(), int64(45)},
		{"NextOffset", b.NextOffset(), int64(46)},
		{"LeaderEpoch", b.LeaderEpoch(), int32(7)},
		{"Count", b.Count(), int32(4)},
		{"Attributes", b.Attributes(), int16(0)},
		{"ProducerID", b.ProducerID(), int64(99)},
		{"ProducerEpoch", b.ProducerEpoch(), int16(3)},
		{"BaseSequence", b.BaseSequence(), int32(11)},
		{"BaseTimestamp", b.BaseTimestamp(), testNow},
		{"MaxTimestamp", b.MaxTimestamp(), now},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	got, err := b.Records(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		want := r
		want.Offset = 42 + int64(i)
		if want.Timestamp.IsZero() {
			want.Timestamp = now
		}
		if !sameRecord(got[i], want) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want)
		}
	}
	if got[1].Key != nil || got[2].Key == nil || got[1].Value != nil || got[2].Value == nil {
		t.Error("nil and empty keys/values did not round-trip apart")
	}
}

func TestChecksumSkipsBaseOffsetAndEpoch(t *testing.T) {
	buf, err := EncodeBatch(nil, NewBatchHeader(0, 0), []Record{{Value: []byte("a")}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b := Batch(buf)
	b.setBaseOffset(1 << 40)
	b.setLeaderEpoch(12)
	if err := b.Validate(); err != nil {
		t.Fatalf("restamped batch: %v", err)
	}
	if b.BaseOffset() != 1<<40 || b.LeaderEpoch() != 12 {
		t.Fatal("stamp did not take")
	}
	for _, i := range []int{offAttributes, offBaseTimestamp, len(b) - 1} {
		c := append(Batch(nil), b...)
		c[i] ^= 1
		if err := c.Validate(); !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("flip at %d: %v, want ErrCorruptBatch", i, err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := map[string][]Record{
		"empty":      {},
		"before1970": {{Timestamp: time.Unix(-1, 0)}},
		"after2262":  {{Timestamp: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for name, recs := range cases {
		if _, err := EncodeBatch(nil, NewBatchHeader(0, 0), recs, testNow); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
		}
	}
	if _, err := EncodeBatch(nil, NewBatchHeader(0, 0), []Record{{}}, time.Time{}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("zero clock: %v, want ErrInvalidRecord", err)
	}
}

func TestEncodeAllocationFree(t *testing.T) {
	recs := benchRecords(100, 100)
	buf := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = EncodeBatch(buf[:0], NewBatchHeader(0, 1), recs, testNow); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("EncodeBatch allocates %v times per batch", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if err := Batch(buf).Validate(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Validate allocates %v times per batch", allocs)
	}
}

// randomRecords draws a batch exercising every field's edge cases.
func randomRecords(rng *rand.Rand) []Record {
	n := 1 + rng.IntN(20)
	recs := make([]Record, n)
	bs := func() []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		default:
			b := make([]byte, rng.IntN(300))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}
	}
	for i := range recs {
		if rng.IntN(3) > 0 {
			recs[i].Timestamp = time.Unix(0, rng.Int64N(maxTimestampNanos))
		}
		recs[i].Key, recs[i].Value = bs(), bs()
		for range rng.IntN(3) {
			recs[i].Headers = append(recs[i].Headers, Header{Key: string(bs()), Value: bs()})
		}
	}
	return recs
}

// TestBatchRoundTripProperty: for random batches, decode(encode(x)) == x
// (offsets dense from the base, zero timestamps replaced by now), and the
// batch validates and splits back out of a concatenation.
func TestBatchRoundTripProperty(t *testing.T) {
	prop := func(seed uint64, base int64, epoch int32) bool {
		rng := rand.New(rand.NewPCG(seed, 1))
		base &= 1<<62 - 1
		epoch &= 1<<31 - 1
		recs := randomRecords(rng)
		buf, err := EncodeBatch(nil, NewBatchHeader(base, epoch), recs, testNow)
		if err != nil {
			t.Log(err)
			return false
		}
		two := append(append([]byte(nil), buf...), buf...)
		b, rest, err := SplitBatch(two)
		if err != nil || !bytes.Equal(b, buf) || !bytes.Equal(rest, buf) || b.Validate() != nil {
			t.Log("split/validate", err)
			return false
		}
		got, err := b.Records(nil)
		if err != nil || len(got) != len(recs) || b.LeaderEpoch() != epoch {
			t.Log("records", err)
			return false
		}
		maxTs := time.Time{}
		for i, r := range recs {
			r.Offset = base + int64(i)
			if r.Timestamp.IsZero() {
				r.Timestamp = testNow
			}
			if r.Timestamp.After(maxTs) {
				maxTs = r.Timestamp
			}
			if !sameRecord(got[i], r) {
				t.Logf("record %d: %+v != %+v", i, got[i], r)
				return false
			}
		}
		return b.MaxTimestamp().Equal(maxTs)
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 300}); err != nil {
		t.Fatal(err)
	}
}

func TestCloneDetaches(t *testing.T) {
	buf, _ := EncodeBatch(nil, NewBatchHeader(0, 0), []Record{{Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("x")}}}}, testNow)
	recs, err := Batch(buf).Records(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := recs[0].Clone()
	for i := range buf {
		buf[i] = 0
	}
	if string(c.Key) != "k" || string(c.Value) != "v" || string(c.Headers[0].Value) != "x" {
		t.Fatalf("clone shares memory: %+v", c)
	}
}

// FuzzDecodeBatch: no input panics the decoders or makes them allocate
// beyond the input's size, and whatever validates re-encodes identically.
func FuzzDecodeBatch(f *testing.F) {
	// Small seeds: from large random batches (TestBatchRoundTripProperty
	// covers those) the fuzzer runs about 200 inputs a second here.
	for i, recs := range [][]Record{
		{{Value: []byte("a")}},
		{{Key: []byte("k"), Value: nil, Timestamp: testNow.Add(-time.Hour)}, {Key: []byte{}, Headers: []Header{{Key: "h", Value: []byte("x")}, {Key: "n"}}}},
		{{Value: bytes.Repeat([]byte("v"), 40)}, {Value: []byte{}}, {Timestamp: time.Unix(0, 0)}},
	} {
		buf, err := EncodeBatch(nil, NewBatchHeader(int64(i)<<20, int32(i)), recs, testNow)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
		f.Add(buf[:len(buf)/2])
	}
	f.Add([]byte{})
	f.Add(make([]byte, batchHeaderSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, _, err := SplitBatch(data)
		if err != nil {
			return
		}
		recs, rerr := b.Records(nil)
		if len(recs) > len(data) {
			t.Fatalf("%d records from %d bytes", len(recs), len(data))
		}
		// Fix the checksum so that mutations reach the structural checks.
		b = append(Batch(nil), b...)
		binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
		if b.Validate() != nil {
			return
		}
		if rerr != nil {
			t.Fatalf("Validate passed, Records failed: %v", rerr)
		}
		h := BatchHeader{BaseOffset: b.BaseOffset(), LeaderEpoch: b.LeaderEpoch(), ProducerID: b.ProducerID(),
			ProducerEpoch: b.ProducerEpoch(), BaseSequence: b.BaseSequence()}
		again, err := EncodeBatch(nil, h, recs, testNow)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if err := Batch(again).Validate(); err != nil {
			t.Fatalf("re-encoded batch invalid: %v", err)
		}
		got, _ := Batch(again).Records(nil)
		for i := range recs {
			if !sameRecord(got[i], recs[i]) {
				t.Fatalf("record %d changed on re-encode", i)
			}
		}
	})
}

func benchRecords(n, size int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(i + j)
		}
		recs[i] = Record{Value: v}
	}
	return recs
}
