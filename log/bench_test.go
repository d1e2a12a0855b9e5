package log

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/replog/replog/wal"
)

// The benchmarks run on the OS file system (a temporary directory, so the
// page cache) with SyncNever: they measure the log's CPU cost over the
// wal, not the disk.

func benchLogOptions(dir string) Options {
	return Options{WAL: wal.Options{Dir: dir, Durability: wal.SyncNever}}
}

// BenchmarkAppend appends batches of 100 records of 100 bytes. One op is
// one batch; records/s is the figure of merit. Compare with
// BenchmarkWALAppend, the same bytes appended to a bare wal.
func BenchmarkAppend(b *testing.B) {
	recs := benchRecords(100, 100)
	b.Run("serial", func(b *testing.B) {
		l := mustOpen(b, benchLogOptions(b.TempDir()))
		defer l.Close()
		ctx := context.Background()
		size, _ := EncodedSize(recs, testNow)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, _, err := l.AppendLeader(ctx, 1, recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("parallel", func(b *testing.B) {
		l := mustOpen(b, benchLogOptions(b.TempDir()))
		defer l.Close()
		size, _ := EncodedSize(recs, testNow)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := l.AppendLeader(context.Background(), 1, recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkWALAppend is the baseline of BenchmarkAppend: the same encoded
// batch appended to a bare wal with the same options.
func BenchmarkWALAppend(b *testing.B) {
	batch, err := EncodeBatch(nil, NewBatchHeader(0, 1), benchRecords(100, 100), testNow)
	if err != nil {
		b.Fatal(err)
	}
	open := func(b *testing.B) *wal.Log {
		w, err := wal.Open(wal.Options{Dir: b.TempDir(), Durability: wal.SyncNever})
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	b.Run("serial", func(b *testing.B) {
		w := open(b)
		defer w.Close()
		ctx := context.Background()
		b.SetBytes(int64(len(batch)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := w.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("parallel", func(b *testing.B) {
		w := open(b)
		defer w.Close()
		b.SetBytes(int64(len(batch)))
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := w.Append(context.Background(), batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkRead reads a 64 MiB log of 100 x 100 B batches from the page
// cache, 1 MiB per call, sequentially, decoded (Read) and raw
// (ReadBatches). One op is one call.
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	l := mustOpen(b, benchLogOptions(dir))
	defer l.Close()
	recs := benchRecords(100, 100)
	ctx := context.Background()
	for l.wal.WrittenEnd() < 64<<20 {
		if _, _, err := l.AppendLeader(ctx, 1, recs); err != nil {
			b.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	if err := l.SetHighWatermark(end); err != nil {
		b.Fatal(err)
	}
	b.Run("records", func(b *testing.B) {
		b.ReportAllocs()
		var from, n, bytes int64
		for b.Loop() {
			got, err := l.Read(from, end, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range got {
				bytes += int64(len(r.Value))
			}
			n += int64(len(got))
			if from = got[len(got)-1].Offset + 1; from >= end {
				from = 0
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "valueMB/s")
	})
	b.Run("batches", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2<<20)
		var from, n, bytes int64
		for b.Loop() {
			out, err := l.ReadBatches(buf[:0], from, end, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			bytes += int64(len(out))
			var last Batch
			for rest := out; len(rest) > 0; {
				bt, r, err := SplitBatch(rest)
				if err != nil {
					b.Fatal(err)
				}
				n += int64(bt.Count())
				last, rest = bt, r
			}
			if from = last.NextOffset(); from >= end {
				from = 0
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
	})
}

// BenchmarkCatchUpRead reads 32 batches of single 100-byte records, as a
// leader serving a follower a few rounds behind does (one ReadBatches
// into a recycled 1 MiB buffer), from a log of 100,000 such batches in
// the page cache: at its tail (tail: up to the log end, as catch-up
// reads), and at places spread over the log (spread: 32 batches from
// there). One op is one call.
func BenchmarkCatchUpRead(b *testing.B) {
	l := mustOpen(b, benchLogOptions(b.TempDir()))
	defer l.Close()
	recs := benchRecords(1, 100)
	ctx := context.Background()
	for range 100_000 {
		if _, _, err := l.AppendLeader(ctx, 1, recs); err != nil {
			b.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	buf := make([]byte, 0, 1<<20)
	read := func(b *testing.B, from, limit int64) {
		out, err := l.ReadBatches(buf[:0], from, limit, 1<<20)
		if err != nil || len(out) == 0 {
			b.Fatalf("ReadBatches(%d): %d bytes, %v", from, len(out), err)
		}
	}
	b.Run("tail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			read(b, end-32, end)
		}
	})
	b.Run("spread", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			from := end - 32 - (i*7919)%50_000 // off the index entries
			i++
			read(b, from, from+32)
		}
	})
}

// BenchmarkReopen measures Open of a 1 GiB log after a clean Close and
// after a crash: a copy of the directory taken while the log was open, so
// without the clean-shutdown marker and with the last background
// checkpoint (the log is written 40 MiB past a checkpoint boundary, so
// that tail is scanned). It writes about 2 GiB to a temporary directory
// (removed after), so it runs only when REPLOG_BENCH_REOPEN is set.
func BenchmarkReopen(b *testing.B) {
	if os.Getenv("REPLOG_BENCH_REOPEN") == "" {
		b.Skip("set REPLOG_BENCH_REOPEN=1 to write and reopen a 1 GiB log")
	}
	dir, crashDir := filepath.Join(b.TempDir(), "clean"), filepath.Join(b.TempDir(), "crash")
	opts := benchLogOptions(dir)
	l := mustOpen(b, opts)
	recs := benchRecords(100, 100)
	ctx := context.Background()
	for l.wal.WrittenEnd() < 1<<30+40<<20 {
		if _, _, err := l.AppendLeader(ctx, 1, recs); err != nil {
			b.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	if err := l.wal.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	// Copying under dataMu keeps a background checkpoint from being
	// half-written into the copy.
	l.dataMu.Lock()
	err := copyDir(dir, crashDir)
	l.dataMu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	crashCk, err := os.ReadFile(filepath.Join(crashDir, checkpointName))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, dir string }{{"clean", dir}, {"crash", crashDir}} {
		b.Run(c.name, func(b *testing.B) {
			var scanned int64
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				l := mustOpen(b, benchLogOptions(c.dir))
				total += time.Since(start)
				scanned = l.scanned
				if l.LogEndOffset() != end {
					b.Fatalf("reopened with end %d, want %d", l.LogEndOffset(), end)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				if c.name == "crash" { // back to the crash image
					if err := os.Remove(filepath.Join(c.dir, "clean")); err != nil {
						b.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(c.dir, checkpointName), crashCk, 0o644); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/open")
			b.ReportMetric(float64(scanned)/(1<<20), "MiB-scanned")
		})
	}
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err == nil {
			_, err = io.Copy(dst, src)
			err = errorsJoin(err, dst.Close())
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// BenchmarkEncodeBatch is the CPU cost of encoding one batch of 100
// records of 100 bytes into a reused buffer, and of validating it.
func BenchmarkEncodeBatch(b *testing.B) {
	recs := benchRecords(100, 100)
	buf := make([]byte, 0, 64<<10)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = EncodeBatch(buf[:0], NewBatchHeader(0, 1), recs, testNow); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("validate", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if err := Batch(buf).Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		out := make([]Record, 0, 100)
		for b.Loop() {
			var err error
			if out, err = Batch(buf).Records(out[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendVsWAL alternates, op by op, one AppendLeader of 100
// records of 100 bytes and one raw wal Append of the same encoded bytes
// (each on its own directory, SyncNever), timing each: on a shared,
// noisy machine the two see the same load, so their ratio is meaningful.
// One op is one of each.
func BenchmarkAppendVsWAL(b *testing.B) {
	recs := benchRecords(100, 100)
	batch, err := EncodeBatch(nil, NewBatchHeader(0, 1), recs, testNow)
	if err != nil {
		b.Fatal(err)
	}
	l := mustOpen(b, benchLogOptions(b.TempDir()))
	defer l.Close()
	w, err := wal.Open(wal.Options{Dir: b.TempDir(), Durability: wal.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	var logTime, walTime time.Duration
	appendLog := func() {
		t := time.Now()
		if _, _, err := l.AppendLeader(ctx, 1, recs); err != nil {
			b.Fatal(err)
		}
		logTime += time.Since(t)
	}
	appendWAL := func() {
		t := time.Now()
		if _, err := w.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		walTime += time.Since(t)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // alternate the order: neither always runs first
			appendLog()
			appendWAL()
		} else {
			appendWAL()
			appendLog()
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/logTime.Seconds(), "log-records/s")
	b.ReportMetric(float64(b.N*len(recs))/walTime.Seconds(), "wal-records/s")
	b.ReportMetric(walTime.Seconds()/logTime.Seconds(), "ratio")
}
