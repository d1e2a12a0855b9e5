package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/replog/replog/wal"
)

// batchAt encodes a batch of vs as a leader of epoch would have stored it
// at base.
func batchAt(t *testing.T, base int64, epoch int32, vs ...string) []byte {
	t.Helper()
	b, err := EncodeBatch(nil, BatchHeader{ProducerID: -1}, vals(vs...), testNow)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(b[0:8], uint64(base))
	binary.BigEndian.PutUint32(b[12:16], uint32(epoch))
	return b
}

func values(t *testing.T, l *Log, from int64) string {
	t.Helper()
	var got []string
	for _, r := range readAll(t, l, from, l.HighWatermark()) {
		got = append(got, string(r.Value))
	}
	return fmt.Sprint(got)
}

// A follower behind its leader's log start resets to it: the log is empty
// at the new offset, takes the leader's batches from there, and keeps
// that state across a clean reopen and across a crash.
func TestResetTo(t *testing.T) {
	for _, how := range []string{"close", "crash"} {
		t.Run(how, func(t *testing.T) {
			fsys := wal.NewMemFS()
			ffs := wal.NewFaultFS(fsys)
			opts := testOptions(ffs, newClock())
			l := mustOpen(t, opts)
			ctx := context.Background()
			for i := range 20 {
				appendLeader(t, l, 1, fmt.Sprint(i))
			}
			if err := l.SetHighWatermark(20); err != nil {
				t.Fatal(err)
			}
			if err := l.ResetTo(ctx, -1); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("ResetTo(-1) = %v, want ErrOffsetOutOfRange", err)
			}
			if err := l.ResetTo(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			if s, e, hw := l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark(); s != 1000 || e != 1000 || hw != 1000 {
				t.Fatalf("after reset: start %d end %d hw %d, want 1000 each", s, e, hw)
			}
			if len(l.Epochs()) != 0 {
				t.Fatalf("epochs after reset: %v", l.Epochs())
			}
			if _, err := l.ReadBatches(nil, 5, 1000, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below the new start = %v, want ErrOffsetOutOfRange", err)
			}
			checkInvariants(t, l)
			if _, err := l.AppendFollower(ctx, batchAt(t, 999, 3, "x")); !errors.Is(err, ErrNotContiguous) {
				t.Fatalf("batch before the new start = %v, want ErrNotContiguous", err)
			}
			if _, err := l.AppendFollower(ctx, batchAt(t, 1000, 3, "x", "y")); err != nil {
				t.Fatal(err)
			}
			if err := l.SetHighWatermark(1002); err != nil {
				t.Fatal(err)
			}
			if how == "close" {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(l, ffs, fsys, wal.CrashOptions{})
			}
			l = mustOpen(t, opts)
			defer l.Close()
			if s, e := l.LogStartOffset(), l.LogEndOffset(); s != 1000 || e != 1002 {
				t.Fatalf("reopened: start %d end %d, want 1000 and 1002", s, e)
			}
			if err := l.SetHighWatermark(1002); err != nil {
				t.Fatal(err)
			}
			if got := values(t, l, 1000); got != "[x y]" {
				t.Fatalf("reopened: %s", got)
			}
			if fmt.Sprint(l.Epochs()) != "[{3 1000}]" {
				t.Fatalf("reopened: epochs %v", l.Epochs())
			}
			checkInvariants(t, l)
		})
	}
}

// A crash in the middle of a reset (after its checkpoint, before the wal
// is cut) recovers the old log whole, never a mix.
func TestResetToCrashBeforeCut(t *testing.T) {
	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	l := mustOpen(t, opts)
	for i := range 10 {
		appendLeader(t, l, 1, fmt.Sprint(i))
	}
	if err := l.SetHighWatermark(10); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // everything durable, checkpoint written
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	// Fail the wal's truncation: the reset's checkpoint is written, the
	// wal still holds the old batches.
	ffs.Inject(wal.Fault{Ops: wal.OpTruncate, Sticky: true})
	err := l.ResetTo(context.Background(), 500)
	if err == nil || !strings.Contains(err.Error(), "reset") || !strings.Contains(err.Error(), "truncate") {
		t.Fatalf("ResetTo with the wal truncation failing = %v, want the truncation's error", err)
	}
	crash(l, ffs, fsys, wal.CrashOptions{})
	l = mustOpen(t, opts)
	defer l.Close()
	if s, e := l.LogStartOffset(), l.LogEndOffset(); s != 0 || e != 10 {
		t.Fatalf("after a crash during the reset: start %d end %d, want the old log 0-10", s, e)
	}
	if err := l.SetHighWatermark(10); err != nil {
		t.Fatal(err)
	}
	if got := values(t, l, 0); got != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Fatalf("after a crash during the reset: %s", got)
	}
}

// A crash during a reset never raises the high watermark of the old log
// it recovers: records above it were never committed, and once counted
// below it the follower could not truncate them.
func TestResetToCrashKeepsHighWatermark(t *testing.T) {
	l := crashDuringReset(t, 10, 0)
	defer l.Close()
	if s, e := l.LogStartOffset(), l.LogEndOffset(); s != 0 || e != 10 {
		t.Fatalf("start %d end %d, want the old log 0-10", s, e)
	}
	if hw := l.HighWatermark(); hw > 4 {
		t.Fatalf("high watermark %d after a crash during ResetTo, was 4: records 4..%d read as committed", hw, hw-1)
	}
}

// A crash while a reset removes the old log's segments (the later ones
// gone, the first not yet cut) recovers a prefix of the old log, with
// its high watermark no higher than before.
func TestResetToCrashMidCut(t *testing.T) {
	l := crashDuringReset(t, 60, 200)
	defer l.Close()
	s, e, hw := l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark()
	if s != 0 || e == 0 || e >= 60 {
		t.Fatalf("after a crash while the reset removed segments: log [%d, %d), want a prefix of the old log [0, 60)", s, e)
	}
	if hw > 4 {
		t.Fatalf("high watermark %d, was 4", hw)
	}
	if got := values(t, l, 0); !strings.HasPrefix(got, "[0\x00") {
		t.Fatalf("the prefix reads %.20q", got)
	}
}

// crashDuringReset appends n records (i, then pad zero bytes), commits the
// first 4, and crashes during a ResetTo(500) whose wal truncation fails
// (with several segments, after the later ones were removed); it returns
// the log reopened.
func crashDuringReset(t *testing.T, n, pad int) *Log {
	t.Helper()
	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	l := mustOpen(t, opts)
	for i := range n {
		appendLeader(t, l, 1, fmt.Sprint(i)+string(make([]byte, pad)))
	}
	if err := l.SetHighWatermark(4); err != nil { // 4.. not committed
		t.Fatal(err)
	}
	ffs.Inject(wal.Fault{Ops: wal.OpTruncate, Sticky: true})
	if err := l.ResetTo(context.Background(), 500); err == nil {
		t.Fatal("ResetTo with the wal truncation failing succeeded")
	}
	crash(l, ffs, fsys, wal.CrashOptions{})
	return mustOpen(t, opts)
}
