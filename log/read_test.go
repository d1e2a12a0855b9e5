package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replog/replog/wal"
)

// TestReadAgainstModel: for random (from, limit, maxBytes), Read returns a
// non-empty dense run of the right records starting at from and below
// limit whenever there is one, and ReadBatches whole batches covering
// from, each entirely below limit.
func TestReadAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
	defer l.Close()
	var model []string
	var bases []int64 // base offset of each batch
	for range 120 {
		n := 1 + rng.IntN(6)
		vs := make([]string, n)
		for i := range vs {
			vs[i] = fmt.Sprintf("%d:%s", len(model)+i, make([]byte, rng.IntN(200)))
		}
		base, _ := appendLeader(t, l, 1, vs...)
		bases = append(bases, base)
		model = append(model, vs...)
	}
	end := int64(len(model))
	for range 500 {
		from := rng.Int64N(end + 1)
		limit := rng.Int64N(end + 10)
		maxBytes := 1 + rng.IntN(3000)
		recs, err := l.Read(from, limit, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if stop := min(limit, end); from < stop && len(recs) == 0 {
			t.Fatalf("Read(%d, %d, %d) returned nothing", from, limit, maxBytes)
		}
		for i, r := range recs {
			if r.Offset != from+int64(i) || r.Offset >= limit || string(r.Value) != model[r.Offset] {
				t.Fatalf("Read(%d, %d, %d): record %d is offset %d %.10q", from, limit, maxBytes, i, r.Offset, r.Value)
			}
		}
		raw, err := l.ReadBatches(nil, from, limit, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		next := int64(-1)
		for rest := raw; len(rest) > 0; {
			b, r, err := SplitBatch(rest)
			if err != nil {
				t.Fatal(err)
			}
			if next < 0 && !(b.BaseOffset() <= from && from <= b.LastOffset()) {
				t.Fatalf("ReadBatches(%d): first batch %d..%d", from, b.BaseOffset(), b.LastOffset())
			}
			if (next >= 0 && b.BaseOffset() != next) || b.LastOffset() >= limit {
				t.Fatalf("ReadBatches(%d, %d): batch %d..%d after %d", from, limit, b.BaseOffset(), b.LastOffset(), next)
			}
			next, rest = b.NextOffset(), r
		}
		// The batch holding from is returned iff it lies below limit.
		i := 0
		for i+1 < len(bases) && bases[i+1] <= from {
			i++
		}
		batchEnd := end
		if i+1 < len(bases) {
			batchEnd = bases[i+1]
		}
		if want := from < end && batchEnd <= limit; want != (len(raw) > 0) {
			t.Fatalf("ReadBatches(%d, %d): %d bytes, batch %d..%d", from, limit, len(raw), bases[i], batchEnd-1)
		}
	}
}

// TestConcurrentUse runs appenders, readers, a high-watermark setter and
// retention at once (meant for -race): readers always see dense, correct
// records below the high watermark.
func TestConcurrentUse(t *testing.T) {
	opts := testOptions(wal.NewMemFS(), newClock())
	opts.RetentionBytes = 8 << 10
	opts.CheckpointInterval = 4 << 10
	l := mustOpen(t, opts)
	defer l.Close()
	// A bound, not a synchronisation: a bug fails the test instead of
	// hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const appends = 300
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range appends / 3 {
				if _, _, err := l.AppendLeader(ctx, 1, vals(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for hw := int64(0); hw < appends; {
			if err := l.WaitEnd(ctx, hw); err != nil {
				t.Error(err)
				return
			}
			hw = l.LogEndOffset()
			if err := l.SetHighWatermark(hw); err != nil {
				t.Error(err)
				return
			}
			if _, err := l.EnforceRetention(context.Background()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for next := int64(0); next < appends; {
				if err := l.Wait(ctx, next); err != nil {
					t.Error(err)
					return
				}
				recs, err := l.Read(next, l.HighWatermark(), 500)
				if err != nil {
					// Retention moved the start past next: skip ahead.
					if start := l.LogStartOffset(); !errors.Is(err, ErrOffsetOutOfRange) || start <= next {
						t.Errorf("Read(%d): %v (start %d)", next, err, start)
						return
					}
					next = l.LogStartOffset()
					continue
				}
				for i, r := range recs {
					if r.Offset != next+int64(i) {
						t.Errorf("offset %d at index %d from %d", r.Offset, i, next)
						return
					}
				}
				next += int64(len(recs))
			}
		})
	}
	wg.Wait()
	checkInvariants(t, l)
}

// countingFS counts the reads of its files.
type countingFS struct {
	wal.FS
	reads *atomic.Int64
}

func (c countingFS) Open(name string) (wal.File, error) { return c.wrap(c.FS.Open(name)) }
func (c countingFS) Create(name string) (wal.File, error) {
	return c.wrap(c.FS.Create(name))
}
func (c countingFS) OpenReadWrite(name string) (wal.File, error) {
	return c.wrap(c.FS.OpenReadWrite(name))
}

func (c countingFS) wrap(f wal.File, err error) (wal.File, error) {
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.reads}, nil
}

type countingFile struct {
	wal.File
	reads *atomic.Int64
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads.Add(1)
	return f.File.ReadAt(p, off)
}

// A scan reads the wal ahead, many small batches per read, not one read
// per batch: catch-up reads of a follower a few rounds behind and
// consumer reads of small records cost a system call or two, not one
// per batch.
func TestScanReadsManyBatchesAtOnce(t *testing.T) {
	reads := new(atomic.Int64)
	opts := testOptions(countingFS{wal.NewMemFS(), reads}, newClock())
	opts.WAL.SegmentSize = 1 << 20
	opts.IndexInterval = 16 << 10
	l := mustOpen(t, opts)
	defer l.Close()
	for i := range 300 {
		appendLeader(t, l, 1, fmt.Sprintf("record %d", i)) // about 100 bytes a frame
	}
	reads.Store(0)
	raw, err := l.ReadBatches(nil, 100, 300, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n > 2 {
		t.Errorf("ReadBatches of 200 batches took %d reads", n)
	}
	if b, _, err := SplitBatch(raw); err != nil || b.BaseOffset() != 100 {
		t.Fatalf("ReadBatches starts with %v, %v", b.BaseOffset(), err)
	}
	if end := rawEnd(raw); end != 300 {
		t.Fatalf("ReadBatches ends at %d, want 300", end)
	}
	reads.Store(0)
	recs, err := l.Read(250, 300, 1<<20)
	if err != nil || len(recs) != 50 || string(recs[0].Value) != "record 250" {
		t.Fatalf("Read: %d records, %v", len(recs), err)
	}
	if n := reads.Load(); n > 2 {
		t.Errorf("Read of 50 batches took %d reads", n)
	}
}

// rawEnd returns the offset after the last of raw's batches, -1 if one is
// damaged.
func rawEnd(raw []byte) int64 {
	end := int64(-1)
	for rest := raw; len(rest) > 0; {
		b, next, err := SplitBatch(rest)
		if err != nil {
			return -1
		}
		end, rest = b.NextOffset(), next
	}
	return end
}

// A segment file shorter than the wal wrote (bytes lost under it) is a
// storage error for a read of an offset the log holds, never
// ErrOffsetOutOfRange, which tells a consumer its offset is gone.
func TestShortSegmentIsNotOutOfRange(t *testing.T) {
	fsys := wal.NewMemFS()
	opts := testOptions(fsys, newClock())
	opts.WAL.SegmentSize = 1 << 20
	l := mustOpen(t, opts)
	defer l.Close()
	for i := range 50 {
		appendLeader(t, l, 1, fmt.Sprintf("record %d", i))
	}
	names, err := fsys.ReadDir("/log")
	if err != nil {
		t.Fatal(err)
	}
	var seg string
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			seg = "/log/" + n
		}
	}
	f, err := fsys.OpenReadWrite(seg)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	if err := f.Truncate(size / 2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, rerr := l.Read(0, 50, 1<<20)
	_, berr := l.ReadBatches(nil, 0, 50, 1<<20)
	for name, err := range map[string]error{"Read": rerr, "ReadBatches": berr} {
		if err == nil || errors.Is(err, ErrOffsetOutOfRange) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s of a shortened segment: %v, want a storage error (unexpected EOF)", name, err)
		}
	}
}
