package log

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/replog/replog/wal"
)

func TestTruncateTo(t *testing.T) {
	fsys := wal.NewMemFS()
	opts := testOptions(fsys, newClock())
	l := mustOpen(t, opts)
	ctx := context.Background()
	appendLeader(t, l, 1, "a", "b") // 0-1
	appendLeader(t, l, 1, "c")      // 2
	appendLeader(t, l, 2, "d", "e") // 3-4
	appendLeader(t, l, 3, "f")      // 5
	if err := l.SetHighWatermark(2); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(ctx, 1); !errors.Is(err, ErrTruncateBelowHighWatermark) {
		t.Fatalf("below the high watermark: %v", err)
	}
	// 4 is inside the batch 3-4: the batch goes whole.
	if err := l.TruncateTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 3 || fmt.Sprint(l.Epochs()) != "[{1 0}]" {
		t.Fatalf("after truncation: end %d, epochs %v", l.LogEndOffset(), l.Epochs())
	}
	if e, off := l.EndOffsetForEpoch(1); e != 1 || off != 3 {
		t.Fatalf("EndOffsetForEpoch(1) = %d, %d", e, off)
	}
	checkInvariants(t, l)
	// Continue in a new epoch, then reopen: the truncated data stays gone.
	appendLeader(t, l, 4, "g")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	if err := l.SetHighWatermark(4); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range readAll(t, l, 0, 4) {
		got = append(got, string(r.Value))
	}
	if fmt.Sprint(got) != "[a b c g]" || fmt.Sprint(l.Epochs()) != "[{1 0} {4 3}]" {
		t.Fatalf("after reopen: %v, epochs %v", got, l.Epochs())
	}
	// Truncating at or past the end is a no-op for the data.
	if err := l.TruncateTo(ctx, 10); err != nil || l.LogEndOffset() != 4 {
		t.Fatalf("past the end: %v, end %d", err, l.LogEndOffset())
	}
	checkInvariants(t, l)
}

// TestTruncateThenCrash: a crash right after a truncation (before any
// clean close) recovers the truncated log, not the old tail.
func TestTruncateThenCrash(t *testing.T) {
	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	l := mustOpen(t, opts)
	for i := range 30 {
		appendLeader(t, l, int32(1+i/10), fmt.Sprint(i))
	}
	if err := l.TruncateTo(context.Background(), 12); err != nil {
		t.Fatal(err)
	}
	appendLeader(t, l, 9, "new")
	crash(l, ffs, fsys, wal.CrashOptions{})
	l = mustOpen(t, opts)
	defer l.Close()
	if l.LogEndOffset() != 13 || fmt.Sprint(l.Epochs()) != "[{1 0} {2 10} {9 12}]" {
		t.Fatalf("end %d, epochs %v", l.LogEndOffset(), l.Epochs())
	}
	checkInvariants(t, l)
}

func TestRetentionBySize(t *testing.T) {
	fsys := wal.NewMemFS()
	opts := testOptions(fsys, newClock())
	opts.RetentionBytes = 8192
	l := mustOpen(t, opts)
	value := string(make([]byte, 200))
	for i := range 200 {
		appendLeader(t, l, int32(1+i/50), value)
	}
	// Nothing goes above the high watermark.
	if start, err := l.EnforceRetention(context.Background()); err != nil || start != 0 {
		t.Fatalf("with high watermark 0: start %d, %v", start, err)
	}
	if err := l.SetHighWatermark(150); err != nil {
		t.Fatal(err)
	}
	start, err := l.EnforceRetention(context.Background())
	if err != nil || start == 0 || start > 150 {
		t.Fatalf("EnforceRetention = %d, %v", start, err)
	}
	if got := l.LogStartOffset(); got != start {
		t.Fatalf("LogStartOffset %d, want %d", got, start)
	}
	if size := int64(l.wal.WrittenEnd() - l.wal.Start()); size < opts.RetentionBytes {
		t.Fatalf("kept %d bytes, less than RetentionBytes", size)
	}
	if _, err := l.Read(start-1, 150, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	if recs, err := l.Read(start, 150, 100); err != nil || len(recs) == 0 || recs[0].Offset != start {
		t.Fatalf("read at the start: %v", err)
	}
	if e := l.Epochs(); e[0].StartOffset != start {
		t.Fatalf("epochs %v not moved to the start %d", e, start)
	}
	checkInvariants(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	if l.LogStartOffset() != start || l.LogEndOffset() != 200 || l.HighWatermark() != 150 {
		t.Fatalf("reopened: start %d end %d hw %d", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark())
	}
	checkInvariants(t, l)
}

func TestRetentionByAge(t *testing.T) {
	clock := newClock()
	opts := testOptions(wal.NewMemFS(), clock)
	opts.RetentionTime = time.Hour
	l := mustOpen(t, opts)
	defer l.Close()
	value := string(make([]byte, 200))
	for range 60 { // old records
		appendLeader(t, l, 1, value)
	}
	clock.Advance(2 * time.Hour)
	for range 60 {
		appendLeader(t, l, 1, value)
	}
	if err := l.SetHighWatermark(120); err != nil {
		t.Fatal(err)
	}
	start, err := l.EnforceRetention(context.Background())
	if err != nil || start == 0 || start > 60 {
		t.Fatalf("EnforceRetention = %d, %v", start, err)
	}
	for _, r := range readAll(t, l, start, 120) {
		if r.Offset >= 60 && r.Timestamp.Before(testNow.Add(2*time.Hour)) {
			t.Fatalf("record %d too old", r.Offset)
		}
	}
	// Everything old enough: all but the segment of the last batch goes.
	clock.Advance(2 * time.Hour)
	start2, err := l.EnforceRetention(context.Background())
	if err != nil || start2 <= start || start2 >= 120 {
		t.Fatalf("second pass = %d, %v", start2, err)
	}
	checkInvariants(t, l)
}

// TestTruncateEverythingAfterRetention: a log emptied by retention and
// truncation keeps its offsets across a reopen and a crash.
func TestTruncateEverythingAfterRetention(t *testing.T) {
	mem := wal.NewMemFS()
	ffs := wal.NewFaultFS(mem)
	opts := testOptions(ffs, newClock())
	opts.RetentionBytes = 1
	l := mustOpen(t, opts)
	value := string(make([]byte, 300))
	for range 40 {
		appendLeader(t, l, 2, value)
	}
	if err := l.SetHighWatermark(30); err != nil {
		t.Fatal(err)
	}
	start, err := l.EnforceRetention(context.Background())
	if err != nil || start == 0 {
		t.Fatalf("retention: %d %v", start, err)
	}
	if start != 30 {
		// One 300-byte record is a ~390-byte frame: 10 frames fill a
		// 4 KiB segment, so segments start at 0, 10, 20, 30, and the
		// high watermark's segment starts at 30.
		t.Fatalf("retention kept from %d; the test expects 30", start)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	if err := l.TruncateTo(context.Background(), 30); err != nil {
		t.Fatalf("truncate to the start: %v", err)
	}
	if l.LogEndOffset() != 30 || l.LogStartOffset() != 30 || l.wal.WrittenEnd() != l.wal.Start() {
		t.Fatalf("end %d, start %d, wal [%d, %d)", l.LogEndOffset(), l.LogStartOffset(), l.wal.Start(), l.wal.WrittenEnd())
	}
	end := l.LogEndOffset()
	crash(l, ffs, mem, wal.CrashOptions{})
	l = mustOpen(t, opts)
	defer l.Close()
	if l.LogEndOffset() != end {
		t.Fatalf("after crash: end %d, want %d", l.LogEndOffset(), end)
	}
	base, _ := appendLeader(t, l, 3, "next")
	if base != end {
		t.Fatalf("next append at %d, want %d", base, end)
	}
	checkInvariants(t, l)
}

// TestRetentionWithNothingToDeleteDoesNotSync: while the log is within its
// first segment, EnforceRetention returns without syncing the wal (so a
// timer running it over many partitions costs no IO).
func TestRetentionWithNothingToDeleteDoesNotSync(t *testing.T) {
	opts := testOptions(wal.NewMemFS(), newClock())
	opts.WAL.Durability = wal.SyncNever
	opts.WAL.SegmentSize = 1 << 20
	opts.MaxBatchBytes = 64 << 10
	opts.RetentionBytes = 1
	l := mustOpen(t, opts)
	defer l.Close()
	for range 50 {
		appendLeader(t, l, 1, string(make([]byte, 1000)))
	}
	if err := l.SetHighWatermark(50); err != nil {
		t.Fatal(err)
	}
	before := l.wal.Stats().Syncs
	if start, err := l.EnforceRetention(context.Background()); err != nil || start != 0 {
		t.Fatalf("EnforceRetention = %d, %v", start, err)
	}
	if after := l.wal.Stats().Syncs; after != before {
		t.Fatalf("%d syncs for nothing to delete", after-before)
	}
}

// TestTruncateBelowHighWatermark: under SyncNever a follower may be told
// to truncate below its high watermark (its new leader lost more unsynced
// data); it does, the high watermark drops to the new end, the epoch
// cache follows, and a crash right after recovers the truncated log.
// Under SyncAlways it refuses like TruncateTo.
func TestTruncateBelowHighWatermark(t *testing.T) {
	ctx := context.Background()
	fill := func(l *Log) {
		appendLeader(t, l, 1, "a", "b") // 0-1
		appendLeader(t, l, 1, "c")      // 2
		appendLeader(t, l, 2, "d", "e") // 3-4
		appendLeader(t, l, 3, "f")      // 5
		if err := l.SetHighWatermark(6); err != nil {
			t.Fatal(err)
		}
	}

	always := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	fill(always)
	if err := always.TruncateBelowHighWatermark(ctx, 4); !errors.Is(err, ErrTruncateBelowHighWatermark) {
		t.Fatalf("SyncAlways: %v", err)
	}
	if always.LogEndOffset() != 6 || always.HighWatermark() != 6 {
		t.Fatalf("SyncAlways: refused truncation changed the log: end %d, hw %d", always.LogEndOffset(), always.HighWatermark())
	}
	if err := always.Close(); err != nil {
		t.Fatal(err)
	}

	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	opts.WAL.Durability = wal.SyncNever
	l := mustOpen(t, opts)
	fill(l)
	if err := l.TruncateTo(ctx, 4); !errors.Is(err, ErrTruncateBelowHighWatermark) {
		t.Fatalf("TruncateTo below the high watermark under SyncNever: %v", err)
	}
	// 4 is inside the batch 3-4: the batch goes whole, and the epochs
	// starting at or after 3 with it.
	if err := l.TruncateBelowHighWatermark(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 3 || l.HighWatermark() != 3 || fmt.Sprint(l.Epochs()) != "[{1 0}]" {
		t.Fatalf("after truncation: end %d, hw %d, epochs %v", l.LogEndOffset(), l.HighWatermark(), l.Epochs())
	}
	if e, off := l.EndOffsetForEpoch(1); e != 1 || off != 3 {
		t.Fatalf("EndOffsetForEpoch(1) = %d, %d", e, off)
	}
	checkInvariants(t, l)
	if err := l.TruncateBelowHighWatermark(ctx, -1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("below the log start: %v", err)
	}
	// A crash right after it recovers the truncated log: the truncation
	// synced the wal and wrote a checkpoint of the truncated state.
	crash(l, ffs, fsys, wal.CrashOptions{})
	l = mustOpen(t, opts)
	if l.LogEndOffset() != 3 || l.HighWatermark() > 3 || fmt.Sprint(l.Epochs()) != "[{1 0}]" {
		t.Fatalf("after crash: end %d, hw %d, epochs %v", l.LogEndOffset(), l.HighWatermark(), l.Epochs())
	}
	checkInvariants(t, l)
	// The high watermark rises again from there; a new epoch continues.
	appendLeader(t, l, 4, "g") // 3
	if err := l.SetHighWatermark(4); err != nil || l.HighWatermark() != 4 {
		t.Fatalf("SetHighWatermark(4): %v, hw %d", err, l.HighWatermark())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	if l.LogEndOffset() != 4 || l.HighWatermark() != 4 || fmt.Sprint(l.Epochs()) != "[{1 0} {4 3}]" {
		t.Fatalf("after reopen: end %d, hw %d, epochs %v", l.LogEndOffset(), l.HighWatermark(), l.Epochs())
	}
	var got []string
	for _, r := range readAll(t, l, 0, 4) {
		got = append(got, string(r.Value))
	}
	if fmt.Sprint(got) != "[a b c g]" {
		t.Fatalf("after reopen: %v", got)
	}
	checkInvariants(t, l)
}

// A retention whose segment removal fails leaves the log start where it
// was and readable (the wal dropped the segment before removing it: the
// log start then named records the wal no longer served).
func TestFailedRetentionKeepsStartReadable(t *testing.T) {
	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	opts.RetentionBytes = 4096
	l := mustOpen(t, opts)
	defer l.Close()
	for i := range 80 {
		appendLeader(t, l, 1, fmt.Sprint(i)+string(make([]byte, 200)))
	}
	if err := l.SetHighWatermark(80); err != nil {
		t.Fatal(err)
	}
	ffs.Inject(wal.Fault{Ops: wal.OpRemove})
	if _, err := l.EnforceRetention(context.Background()); err == nil {
		t.Fatal("EnforceRetention with a failing remove succeeded")
	}
	start := l.LogStartOffset()
	if _, err := l.Read(start, l.HighWatermark(), 1<<20); err != nil {
		t.Fatalf("Read at LogStartOffset %d after a failed retention: %v", start, err)
	}
	// The next retention removes what the failed one could not.
	if _, err := l.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() == start {
		t.Fatal("retention after the failure removed nothing")
	}
	if _, err := l.Read(l.LogStartOffset(), l.HighWatermark(), 1<<20); err != nil {
		t.Fatalf("Read at the log start after retention: %v", err)
	}
}
