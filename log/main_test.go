package log

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/replog/replog/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testOptions is a small log on fsys: 4 KiB segments, 256-byte index
// interval, SyncAlways, the fake clock.
func testOptions(fsys wal.FS, clock *fakeClock) Options {
	return Options{
		WAL:           wal.Options{FS: fsys, Dir: "/log", SegmentSize: 4096},
		IndexInterval: 256,
		Clock:         clock.Now,
	}
}

func newClock() *fakeClock { return &fakeClock{now: testNow} }

func mustOpen(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// closeLog closes l at test end if still open.
func closeLog(t testing.TB, l *Log) {
	t.Cleanup(func() { _ = l.Close() })
}

// vals makes one record per value string.
func vals(vs ...string) []Record {
	recs := make([]Record, len(vs))
	for i, v := range vs {
		recs[i] = Record{Key: []byte("k"), Value: []byte(v)}
	}
	return recs
}

func appendLeader(t testing.TB, l *Log, epoch int32, vs ...string) (int64, int64) {
	t.Helper()
	base, last, err := l.AppendLeader(context.Background(), epoch, vals(vs...))
	if err != nil {
		t.Fatalf("AppendLeader: %v", err)
	}
	return base, last
}

// readAll returns every record from from below limit, reading in small
// steps.
func readAll(t testing.TB, l *Log, from, limit int64) []Record {
	t.Helper()
	var out []Record
	for {
		recs, err := l.Read(from, limit, 300)
		if err != nil {
			t.Fatalf("Read(%d, %d): %v", from, limit, err)
		}
		if len(recs) == 0 {
			return out
		}
		for i, r := range recs {
			if r.Offset != from+int64(i) {
				t.Fatalf("Read(%d): record %d has offset %d", from, i, r.Offset)
			}
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Offset + 1
	}
}

// checkInvariants checks what must hold of every log at every moment:
// offsets dense from the start, high watermark within [start, end], the
// epoch cache ordered and matching the batches' epochs.
func checkInvariants(t testing.TB, l *Log) {
	t.Helper()
	start, leo, hw := l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark()
	if !(start <= hw && hw <= leo) {
		t.Fatalf("start %d, high watermark %d, end %d out of order", start, hw, leo)
	}
	buf, err := l.ReadBatches(nil, start, leo, 1<<30)
	if err != nil {
		t.Fatalf("ReadBatches: %v", err)
	}
	epochs := l.Epochs()
	next, prevEpoch := start, int32(-1)
	for rest := buf; len(rest) > 0; {
		b, r, err := SplitBatch(rest)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		if b.BaseOffset() != next {
			t.Fatalf("batch at %d, expected %d", b.BaseOffset(), next)
		}
		if e := b.LeaderEpoch(); e < prevEpoch {
			t.Fatalf("epoch %d after %d at offset %d", e, prevEpoch, next)
		} else if e > prevEpoch {
			// A batch opening an epoch: the cache must say it starts here
			// (or, for the first batch kept, at the log start).
			c := epochCache{entries: epochs}
			if got := c.epochAt(next); got != e {
				t.Fatalf("epoch cache %v says epoch %d at %d, batch says %d", epochs, got, next, e)
			}
			prevEpoch = e
		}
		next, rest = b.NextOffset(), r
	}
	if next != leo {
		t.Fatalf("batches end at %d, log end %d", next, leo)
	}
	for i, e := range epochs {
		if i > 0 && (e.Epoch <= epochs[i-1].Epoch || e.StartOffset < epochs[i-1].StartOffset) {
			t.Fatalf("epoch cache out of order: %v", epochs)
		}
		if e.StartOffset < start || e.StartOffset > leo {
			t.Fatalf("epoch cache %v outside [%d, %d]", epochs, start, leo)
		}
	}
}

// crash simulates the death of the process and a power failure under l:
// from now on every FS operation through ffs fails (nothing l does after
// its "death" reaches the disk), l is closed to stop its goroutines, mem
// loses what was not synced, and ffs works again for the next Open.
func crash(l *Log, ffs *wal.FaultFS, mem *wal.MemFS, opts wal.CrashOptions) {
	ffs.Inject(wal.Fault{Sticky: true})
	mem.Crash(opts)
	_ = l.Close() // fails: the process is "dead"
	ffs.Reset()
}
