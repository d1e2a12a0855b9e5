package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/replog/replog/wal"
)

func TestAppendAndRead(t *testing.T) {
	clock := newClock()
	l := mustOpen(t, testOptions(wal.NewMemFS(), clock))
	closeLog(t, l)
	recs := []Record{
		{Key: nil, Value: []byte("a"), Timestamp: testNow.Add(-5)},
		{Key: []byte{}, Value: nil, Headers: []Header{{Key: "h", Value: []byte{}}}},
	}
	base, last, err := l.AppendLeader(context.Background(), 3, recs)
	if err != nil || base != 0 || last != 1 {
		t.Fatalf("AppendLeader = %d, %d, %v", base, last, err)
	}
	if base, last = appendLeader(t, l, 3, "c", "d", "e"); base != 2 || last != 4 {
		t.Fatalf("second batch %d..%d", base, last)
	}
	if got := l.LogEndOffset(); got != 5 {
		t.Fatalf("LogEndOffset %d", got)
	}
	// Nothing is committed yet: reads below the high watermark see nothing.
	if got, err := l.Read(0, l.HighWatermark(), 1<<20); err != nil || len(got) != 0 {
		t.Fatalf("read above the high watermark: %v %v", got, err)
	}
	if err := l.SetHighWatermark(5); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, 0, l.HighWatermark())
	if len(got) != 5 {
		t.Fatalf("read %d records", len(got))
	}
	want0 := Record{Offset: 0, Timestamp: testNow.Add(-5), Value: []byte("a")}
	want1 := Record{Offset: 1, Timestamp: testNow, Key: []byte{}, Headers: []Header{{Key: "h", Value: []byte{}}}}
	if !sameRecord(got[0], want0) || !sameRecord(got[1], want1) {
		t.Fatalf("records %+v %+v", got[0], got[1])
	}
	// From the middle of a batch: earlier records skipped.
	mid, err := l.Read(3, 5, 1<<20)
	if err != nil || len(mid) != 2 || mid[0].Offset != 3 || string(mid[1].Value) != "e" {
		t.Fatalf("Read(3) = %+v, %v", mid, err)
	}
	// Limit in the middle of a batch cuts the records, never returns more.
	if lim, err := l.Read(2, 3, 1<<20); err != nil || len(lim) != 1 || lim[0].Offset != 2 {
		t.Fatalf("Read(2, 3) = %+v, %v", lim, err)
	}
	checkInvariants(t, l)
}

func TestReadBatchesBounds(t *testing.T) {
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, l)
	for i := range 10 {
		appendLeader(t, l, 1, fmt.Sprint(i), fmt.Sprint(i)) // batches [0,1] [2,3] ...
	}
	one, err := l.ReadBatches(nil, 0, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, rest, err := SplitBatch(one)
	if err != nil || len(rest) != 0 || b.BaseOffset() != 0 {
		t.Fatalf("maxBytes 1 must still return one whole batch: %v %d", err, len(rest))
	}
	prefix := []byte("keep")
	all, err := l.ReadBatches(prefix, 3, 9, 1<<20)
	if err != nil || !bytes.Equal(all[:4], prefix) {
		t.Fatal(err)
	}
	var bases []int64
	for rest := all[4:]; len(rest) > 0; {
		b, r, err := SplitBatch(rest)
		if err != nil {
			t.Fatal(err)
		}
		bases, rest = append(bases, b.BaseOffset()), r
	}
	// from 3 starts with the batch holding it (2); limit 9 excludes [8,9].
	if fmt.Sprint(bases) != "[2 4 6]" {
		t.Fatalf("batches %v", bases)
	}
	if got, err := l.ReadBatches(nil, 20, 30, 100); err != nil || len(got) != 0 {
		t.Fatalf("at the end: %d bytes, %v", len(got), err)
	}
	if _, err := l.ReadBatches(nil, 21, 30, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	if _, err := l.Read(-1, 30, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("negative: %v", err)
	}
}

func TestConcurrentLeaderAppendsAreDense(t *testing.T) {
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, l)
	const writers, perWriter = 8, 40
	var mu sync.Mutex
	got := map[int64]string{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				v := fmt.Sprintf("w%d-%d", w, i)
				base, last, err := l.AppendLeader(context.Background(), 1, vals(v, v+"'"))
				if err != nil || last != base+1 {
					t.Errorf("append: %d..%d %v", base, last, err)
					return
				}
				mu.Lock()
				got[base], got[last] = v, v+"'"
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n := int64(writers * perWriter * 2)
	if l.LogEndOffset() != n || int64(len(got)) != n {
		t.Fatalf("end %d, %d offsets returned, want %d", l.LogEndOffset(), len(got), n)
	}
	if err := l.SetHighWatermark(n); err != nil {
		t.Fatal(err)
	}
	for _, r := range readAll(t, l, 0, n) {
		if string(r.Value) != got[r.Offset] {
			t.Fatalf("offset %d holds %q, append returned %q", r.Offset, r.Value, got[r.Offset])
		}
	}
	checkInvariants(t, l)
}

func TestFollowerAppendCopiesLeaderExactly(t *testing.T) {
	leader := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, leader)
	follower := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, follower)
	appendLeader(t, leader, 1, "a", "b")
	appendLeader(t, leader, 2, "c")
	appendLeader(t, leader, 2, "d", "e", "f")
	ctx := context.Background()
	raw, err := leader.ReadBatches(nil, 0, leader.LogEndOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// Not contiguous: the second batch alone.
	_, rest, _ := SplitBatch(raw)
	if _, err := follower.AppendFollower(ctx, rest); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("gap: %v", err)
	}
	// Corrupt: one flipped byte in the last batch; nothing is appended.
	bad := append([]byte(nil), raw...)
	bad[len(bad)-1] ^= 1
	if _, err := follower.AppendFollower(ctx, bad); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("corrupt: %v", err)
	}
	if follower.LogEndOffset() != 0 {
		t.Fatal("a failed follower append left data")
	}
	end, err := follower.AppendFollower(ctx, raw)
	if err != nil || end != 6 {
		t.Fatalf("AppendFollower = %d, %v", end, err)
	}
	copied, err := follower.ReadBatches(nil, 0, 6, 1<<20)
	if err != nil || !bytes.Equal(copied, raw) {
		t.Fatalf("follower holds different bytes: %v", err)
	}
	if fmt.Sprint(follower.Epochs()) != fmt.Sprint(leader.Epochs()) {
		t.Fatalf("epochs %v, leader %v", follower.Epochs(), leader.Epochs())
	}
	if _, err := follower.AppendFollower(ctx, raw); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("replay: %v", err)
	}
	checkInvariants(t, follower)
}

func TestEpochRules(t *testing.T) {
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, l)
	ctx := context.Background()
	appendLeader(t, l, 2, "a")
	if _, _, err := l.AppendLeader(ctx, 1, vals("x")); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale leader append: %v", err)
	}
	if err := l.BeginEpoch(5); err != nil {
		t.Fatal(err)
	}
	if e, off := l.EndOffsetForEpoch(2); e != 2 || off != 1 {
		t.Fatalf("EndOffsetForEpoch(2) = %d, %d after BeginEpoch(5) at 1", e, off)
	}
	if e, off := l.EndOffsetForEpoch(4); e != 2 || off != 1 {
		t.Fatalf("EndOffsetForEpoch(4) = %d, %d", e, off)
	}
	if e, off := l.EndOffsetForEpoch(5); e != 5 || off != 1 {
		t.Fatalf("EndOffsetForEpoch(5) = %d, %d", e, off)
	}
	// Leadership lost before any epoch-5 record: a follower append from
	// the epoch-3 leader replaces the empty epoch 5.
	other := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, other)
	appendLeader(t, other, 2, "a")
	appendLeader(t, other, 3, "b")
	raw, err := other.ReadBatches(nil, 1, 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendFollower(ctx, raw); err != nil {
		t.Fatalf("follower append over an empty epoch: %v", err)
	}
	if got := fmt.Sprint(l.Epochs()); got != "[{2 0} {3 1}]" {
		t.Fatalf("epochs %s", got)
	}
	checkInvariants(t, l)
	// An epoch with records does not give way.
	appendLeader(t, other, 3, "c")
	appendLeader(t, other, 3, "d")
	if err := l.BeginEpoch(6); err != nil {
		t.Fatal(err)
	}
	appendLeader(t, l, 6, "z") // offset 2
	raw, _ = other.ReadBatches(nil, 3, 4, 1<<20)
	if _, err := l.AppendFollower(ctx, raw); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale follower append: %v", err)
	}
}

func TestHighWatermarkRules(t *testing.T) {
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	appendLeader(t, l, 1, "a", "b", "c")
	if err := l.SetHighWatermark(1); err != nil || l.HighWatermark() != 1 {
		t.Fatalf("set 1: %v %d", err, l.HighWatermark())
	}
	if err := l.SetHighWatermark(2); err != nil || l.HighWatermark() != 2 {
		t.Fatalf("set 2: %v %d", err, l.HighWatermark())
	}
	if err := l.SetHighWatermark(1); err != nil || l.HighWatermark() != 2 {
		t.Fatalf("backwards must be ignored: %v %d", err, l.HighWatermark())
	}
	// A leader's high watermark ahead of this log is capped at its end.
	if err := l.SetHighWatermark(10); err != nil || l.HighWatermark() != 3 {
		t.Fatalf("above the end: %v, high watermark %d, want 3", err, l.HighWatermark())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.SetHighWatermark(3); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := l.AppendLeader(context.Background(), 1, vals("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Read(0, 3, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]Options{
		"no dir":     {},
		"tiny batch": {WAL: wal.Options{FS: wal.NewMemFS(), Dir: "/x"}, MaxBatchBytes: 10},
		"neg index":  {WAL: wal.Options{FS: wal.NewMemFS(), Dir: "/x"}, IndexInterval: -1},
		"neg retain": {WAL: wal.Options{FS: wal.NewMemFS(), Dir: "/x"}, RetentionBytes: -1},
	} {
		if _, err := Open(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: %v", name, err)
		}
	}
	l := mustOpen(t, Options{WAL: wal.Options{FS: wal.NewMemFS(), Dir: "/x"}, MaxBatchBytes: 200})
	defer l.Close()
	big := []Record{{Value: make([]byte, 300)}}
	if _, _, err := l.AppendLeader(context.Background(), 0, big); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
}

func TestAppendLeaderBatchKeepsProducerFields(t *testing.T) {
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	defer l.Close()
	h := BatchHeader{LeaderEpoch: 4, ProducerID: 77, ProducerEpoch: 2, BaseSequence: 10, BaseOffset: 999}
	appendLeader(t, l, 4, "first")
	base, last, err := l.AppendLeaderBatch(context.Background(), h, vals("a", "b"))
	if err != nil || base != 1 || last != 2 {
		t.Fatalf("AppendLeaderBatch = %d, %d, %v", base, last, err)
	}
	raw, err := l.ReadBatches(nil, 1, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := SplitBatch(raw)
	if err != nil || b.Validate() != nil {
		t.Fatal(err)
	}
	if b.BaseOffset() != 1 || b.LeaderEpoch() != 4 || b.ProducerID() != 77 || b.ProducerEpoch() != 2 || b.BaseSequence() != 10 {
		t.Fatalf("header: base %d epoch %d producer %d/%d/%d", b.BaseOffset(), b.LeaderEpoch(), b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
	}
}

// TestAppendAllocatesNothingOfItsOwn: in steady state an AppendLeader
// allocates no more than the bare wal Append it wraps.
func TestAppendAllocatesNothingOfItsOwn(t *testing.T) {
	recs := benchRecords(100, 100)
	batch, err := EncodeBatch(nil, NewBatchHeader(0, 1), recs, testNow)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(wal.NewMemFS(), newClock())
	opts.WAL.SegmentSize = 64 << 20
	opts.CheckpointInterval = -1
	l := mustOpen(t, opts)
	defer l.Close()
	w, err := wal.Open(wal.Options{FS: wal.NewMemFS(), Dir: "/w", SegmentSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	logAllocs := testing.AllocsPerRun(200, func() {
		if _, _, err := l.AppendLeader(ctx, 1, recs); err != nil {
			t.Fatal(err)
		}
	})
	walAllocs := testing.AllocsPerRun(200, func() {
		if _, err := w.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	})
	if logAllocs > walAllocs {
		t.Fatalf("AppendLeader: %v allocations per batch, the wal's Append alone %v", logAllocs, walAllocs)
	}
}

// TailStart gives an offset whose read to the end covers at least the
// asked bytes and not much more, and the log start when the log is
// smaller.
func TestTailStart(t *testing.T) {
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	closeLog(t, l)
	if got := l.TailStart(1 << 20); got != 0 {
		t.Fatalf("empty log: TailStart = %d, want 0", got)
	}
	val := string(bytes.Repeat([]byte("v"), 1000))
	for range 300 {
		appendLeader(t, l, 1, val, val, val, val) // about 4 KiB per batch
	}
	end := l.LogEndOffset()
	for _, n := range []int64{1, 10 << 10, 100 << 10, 600 << 10} {
		from := l.TailStart(n)
		b, err := l.ReadBatches(nil, from, end, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) < n || int64(len(b)) > n+2*DefaultIndexInterval+8<<10 {
			t.Errorf("TailStart(%d) = %d: reading to the end reads %d bytes", n, from, len(b))
		}
	}
	if got := l.TailStart(10 << 20); got != l.LogStartOffset() {
		t.Errorf("TailStart beyond the log's size = %d, want the log start %d", got, l.LogStartOffset())
	}
}
