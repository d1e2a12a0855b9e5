package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures Append on the OS file system for payload sizes,
// concurrent writers and durability policies. After each timed run it
// measures, untimed, the baseline: a plain file written with the same
// number of bytes in as many fdatasync'd chunks as the WAL issued syncs
// (SyncNever: in as many unsynced writes as the WAL issued).
// Metrics: appends/s, MB/s (payload), syncs/op, and the baseline's MB/s and
// the WAL's share of it (wal/baseline).
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		for _, writers := range []int{1, 16, 64, 256} {
			for _, d := range []Durability{SyncAlways, SyncNever} {
				name := fmt.Sprintf("size=%d/writers=%d/%v", size, writers, d)
				b.Run(name, func(b *testing.B) { benchAppend(b, size, writers, d) })
			}
		}
	}
}

func benchAppend(b *testing.B, size, writers int, d Durability) {
	dir := b.TempDir()
	l, err := Open(Options{Dir: filepath.Join(dir, "wal"), Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	before := l.Stats()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	elapsed, _ := appendAll(b, []*Log{l}, writers, payload)
	b.StopTimer()
	after := l.Stats()
	syncs := after.Syncs - before.Syncs
	bytes := after.BytesWritten - before.BytesWritten
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(syncs)/float64(b.N), "syncs/op")
	base, err := plainWriteSync(filepath.Join(dir, "baseline"), bytes, after.Writes-before.Writes, syncs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(bytes)/base.Seconds()/1e6, "baseline-MB/s")
	b.ReportMetric(base.Seconds()/elapsed.Seconds(), "wal/baseline")
}

// plainWriteSync writes total bytes to a new file: in syncs equal chunks,
// each followed by fdatasync; or, when syncs is 0, in writes equal chunks,
// unsynced. It returns how long that took.
func plainWriteSync(name string, total, writes, syncs int64) (time.Duration, error) {
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	defer os.Remove(name)
	defer f.Close()
	chunks := max(writes, 1)
	if syncs > 0 {
		chunks = syncs
	}
	buf := make([]byte, total/chunks+1)
	start := time.Now()
	for i := range chunks {
		n := total/chunks + boolInt(i < total%chunks)
		if _, err := f.Write(buf[:n]); err != nil {
			return 0, err
		}
		if syncs > 0 {
			if err := fdatasync(f); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// BenchmarkDiskWriteSync is the disk's sequential write-and-sync bandwidth:
// large writes (4 MiB), each followed by fdatasync; and, for comparison,
// the bandwidth at the chunk sizes group commits produce.
func BenchmarkDiskWriteSync(b *testing.B) {
	for _, chunk := range []int{4 << 20, 1 << 20, 256 << 10, 128 << 10} {
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) { benchDisk(b, chunk) })
	}
}

// BenchmarkDiskSyncLatency is a single writer's cost of one small append
// and fdatasync: 1e9/ns-per-op is the 1/fdatasync-latency bar for
// single-writer SyncAlways appends.
func BenchmarkDiskSyncLatency(b *testing.B) {
	for _, size := range []int{100, 1 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) { benchDisk(b, size) })
	}
}

func benchDisk(b *testing.B, chunk int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "disk"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, chunk)
	b.SetBytes(int64(chunk))
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSingleWriterVsSync checks the single-writer bar on a noisy
// machine by interleaving: each iteration is one SyncAlways Append and then
// one plain write of the same frame size followed by fdatasync, timed
// apart. Metrics: the WAL's appends/s, the plain 1/(write+fdatasync) rate,
// and their ratio (wal/fdatasync; the bar is >= 0.8).
func BenchmarkSingleWriterVsSync(b *testing.B) {
	for _, size := range []int{100, 1 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			dir := b.TempDir()
			l, err := Open(Options{Dir: filepath.Join(dir, "wal")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			f, err := os.Create(filepath.Join(dir, "plain"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			payload := make([]byte, size)
			plain := make([]byte, frameSize(size))
			ctx := context.Background()
			var walT, plainT time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := l.Append(ctx, payload); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := f.Write(plain); err != nil {
					b.Fatal(err)
				}
				if err := fdatasync(f); err != nil {
					b.Fatal(err)
				}
				plainT += time.Since(t1)
				walT += t1.Sub(t0)
			}
			b.ReportMetric(float64(b.N)/walT.Seconds(), "wal-appends/s")
			b.ReportMetric(float64(b.N)/plainT.Seconds(), "fdatasyncs/s")
			b.ReportMetric(plainT.Seconds()/walT.Seconds(), "wal/fdatasync")
		})
	}
}

// BenchmarkConcurrentVsBaseline checks the concurrent bars by interleaving
// three phases per iteration: 256 (or 64) writers append 1 KiB payloads
// with SyncAlways (8 each); a plain file gets the same bytes in as many
// fdatasync'd chunks as the WAL synced; the disk gets 16 MiB in 4 MiB
// fdatasync'd writes. Metrics: MB/s (payload) of each, and the ratios
// wal/baseline (bar >= 0.7) and wal/disk (bar >= 0.5).
func BenchmarkConcurrentVsBaseline(b *testing.B) {
	for _, writers := range []int{64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			const size, each = 1 << 10, 8
			dir := b.TempDir()
			l, err := Open(Options{Dir: filepath.Join(dir, "wal")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			payload := make([]byte, size)
			disk := make([]byte, 4<<20)
			ctx := context.Background()
			var walT, baseT, diskT time.Duration
			var walBytes, payloadBytes, diskBytes int64
			for b.Loop() {
				before := l.Stats()
				t0 := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for range each {
							if _, err := l.Append(ctx, payload); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				walT += time.Since(t0)
				after := l.Stats()
				bytes := after.BytesWritten - before.BytesWritten
				walBytes += bytes
				payloadBytes += int64(writers * each * size)
				d, err := plainWriteSync(filepath.Join(dir, "baseline"), bytes, after.Writes-before.Writes, after.Syncs-before.Syncs)
				if err != nil {
					b.Fatal(err)
				}
				baseT += d
				f, err := os.Create(filepath.Join(dir, "disk"))
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				for range 4 {
					if _, err := f.Write(disk); err != nil {
						b.Fatal(err)
					}
					if err := fdatasync(f); err != nil {
						b.Fatal(err)
					}
				}
				diskT += time.Since(t2)
				diskBytes += 4 * int64(len(disk))
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(payloadBytes)/walT.Seconds()/1e6, "wal-MB/s")
			b.ReportMetric(float64(walBytes)/baseT.Seconds()/1e6, "baseline-MB/s")
			b.ReportMetric(float64(diskBytes)/diskT.Seconds()/1e6, "disk-MB/s")
			b.ReportMetric(baseT.Seconds()/walT.Seconds(), "wal/baseline")
			b.ReportMetric(float64(payloadBytes)/walT.Seconds()/(float64(diskBytes)/diskT.Seconds()), "wal/disk")
			b.ReportMetric(float64(l.Stats().Syncs)/float64(b.N*writers*each), "syncs/op")
		})
	}
}

// BenchmarkOpen measures Open (and Close) of a log whose last segment is a
// full 64 MiB of 1 KiB frames: after a clean Close (no scan) and without the
// clean-shutdown marker, as after a crash (the last segment is scanned). On
// the in-memory FS, so it measures the scan, not the disk.
func BenchmarkOpen(b *testing.B) {
	m := NewMemFS()
	opts := Options{FS: m, Dir: testDir, Durability: SyncNever}
	l, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1<<10)
	for l.NextPos()+2<<10 < DefaultSegmentSize {
		if _, _, err := l.Enqueue(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	for _, clean := range []bool{true, false} {
		b.Run(fmt.Sprintf("clean=%v", clean), func(b *testing.B) {
			b.SetBytes(DefaultSegmentSize)
			for b.Loop() {
				if !clean {
					if err := m.Remove(join(testDir, cleanName)); err != nil {
						b.Fatal(err)
					}
				}
				l, err := Open(opts)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRead measures sequential reads of 1 KiB frames on the OS file
// system (page cache): a Reader (read-ahead) and ReadAt (two reads a frame).
func BenchmarkRead(b *testing.B) {
	l, err := Open(Options{Dir: filepath.Join(b.TempDir(), "wal"), Durability: SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, 1<<10)
	const frames = 16 << 10
	for range frames {
		if _, _, err := l.Enqueue(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Run("Reader", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		var r *Reader
		for i := 0; b.Loop(); i++ {
			if i%frames == 0 {
				if r != nil {
					r.Close()
				}
				if r, err = l.NewReader(0); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	})
	b.Run("ReadAt", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		var buf []byte
		pos := Pos(0)
		for b.Loop() {
			if pos == l.WrittenEnd() {
				pos = 0
			}
			buf, pos, err = l.ReadAt(pos, buf)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSyncGroup is a node's Logs under SyncAlways on the OS file
// system: 18 Logs (3 nodes × 6 partitions in one process, each replica its
// own Log) appending 13,000-byte frames, each Log syncing on its own
// (group=false, the baseline: one fdatasync per Log per round) or through
// one shared SyncGroup (group=true: one syncfs per round for all).
//
// Two load patterns: free, one goroutine per Log appending as fast as its
// syncs allow; lockstep, rounds in which every Log appends one frame at
// once and the next round starts when all are acknowledged.
//
// Metrics: MB/s (payload), flushes/s (device flushes issued: Log syncs
// without a group, group flushes with one), syncs/op (Log syncs per
// append) and syncs/flush.
func BenchmarkSyncGroup(b *testing.B) {
	for _, lockstep := range []bool{false, true} {
		for _, group := range []bool{false, true} {
			pattern := "free"
			if lockstep {
				pattern = "lockstep"
			}
			b.Run(fmt.Sprintf("%s/group=%v", pattern, group), func(b *testing.B) {
				benchSyncGroup(b, 18, 13000, group, lockstep)
			})
		}
	}
}

func benchSyncGroup(b *testing.B, nlogs, size int, group, lockstep bool) {
	dir := b.TempDir()
	var g *SyncGroup
	if group {
		g = NewSyncGroup()
	}
	logs := make([]*Log, nlogs)
	for i := range logs {
		l, err := Open(Options{Dir: filepath.Join(dir, fmt.Sprint(i)), SyncGroup: g})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		logs[i] = l
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	ctx := context.Background()
	logSyncs := func() (n int64) {
		for _, l := range logs {
			n += l.Stats().Syncs
		}
		return n
	}
	syncsBefore := logSyncs()
	var groupBefore SyncGroupStats
	if g != nil {
		groupBefore = g.Stats()
	}
	appendOne := func(l *Log) bool {
		if _, err := l.Append(ctx, payload); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	if lockstep {
		for done := 0; done < b.N; done += nlogs {
			var wg sync.WaitGroup
			for _, l := range logs[:min(nlogs, b.N-done)] {
				wg.Go(func() { appendOne(l) })
			}
			wg.Wait()
		}
	} else {
		appendAll(b, logs, 1, payload)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syncs := logSyncs() - syncsBefore
	flushes := syncs
	if g != nil {
		flushes = g.Stats().Flushes - groupBefore.Flushes
	}
	b.ReportMetric(float64(flushes)/elapsed.Seconds(), "flushes/s")
	b.ReportMetric(float64(syncs)/float64(b.N), "syncs/op")
	b.ReportMetric(float64(syncs)/float64(max(flushes, 1)), "syncs/flush")
}

// BenchmarkJournal: 18 Logs on OSFS, one goroutine per Log appending
// 13,000-byte frames with Append (SyncAlways), each Log syncing its own
// segment (own) or all of them sharing one Journal (journal). MB/s is the
// Logs' payload; syncs/s counts the fdatasyncs issued (segments and
// journal).
//
// The small=... variants are replog's shape: 100-byte frames, 8 appenders
// per Log (a pipelining leader), where the syncs, not the bytes, are the
// limit.
func BenchmarkJournal(b *testing.B) {
	for _, small := range []bool{false, true} {
		for _, journal := range []bool{false, true} {
			name := "own"
			if journal {
				name = "journal"
			}
			size, writers := 13000, 1
			if small {
				name = "small=100x8/" + name
				size, writers = 100, 8
			}
			b.Run(name, func(b *testing.B) { benchJournal(b, 18, size, writers, journal) })
		}
	}
}

func benchJournal(b *testing.B, nlogs, size, writers int, journal bool) {
	dir := b.TempDir()
	var j *Journal
	if journal {
		var err error
		if j, err = OpenJournal(JournalOptions{Dir: filepath.Join(dir, "journal")}); err != nil {
			b.Fatal(err)
		}
	}
	logs := make([]*Log, nlogs)
	for i := range logs {
		l, err := Open(Options{Dir: filepath.Join(dir, fmt.Sprint(i)), Journal: j})
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = l
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
		if j != nil {
			j.Close()
		}
	}()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	syncs := func() (n int64) {
		for _, l := range logs {
			n += l.Stats().Syncs
		}
		if j != nil {
			n += j.Stats().Syncs
		}
		return n
	}
	before := syncs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	elapsed, _ := appendAll(b, logs, writers, payload)
	b.StopTimer()
	n := syncs() - before
	b.ReportMetric(float64(n)/elapsed.Seconds(), "syncs/s")
	b.ReportMetric(float64(n)/float64(b.N), "syncs/op")
}

// BenchmarkSyncNeverRoll measures what steady write-back (WriteBacker)
// changes under SyncNever: 18 Logs (the replica logs of the replication
// benchmark: 6 partitions, RF 3) of 64 MiB segments written as fast as
// they take 64 KiB frames, on the OS file system, with write-back and,
// as the baseline in the same run, with files that hide it (the OS alone
// decides when to write). Metrics: MB/s, and the longest Append (a roll
// waits for its segment's sync: without write-back, the whole segment).
func BenchmarkSyncNeverRoll(b *testing.B) {
	for _, wb := range []bool{true, false} {
		b.Run(fmt.Sprintf("writeback=%v", wb), func(b *testing.B) {
			var fsys FS = OSFS{}
			if !wb {
				fsys = noWriteBackFS{OSFS{}}
			}
			dir := b.TempDir()
			const logs = 18
			ls := make([]*Log, logs)
			for i := range ls {
				l, err := Open(Options{FS: fsys, Dir: filepath.Join(dir, fmt.Sprint(i)), Durability: SyncNever})
				if err != nil {
					b.Fatal(err)
				}
				ls[i] = l
			}
			payload := make([]byte, 64<<10)
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			_, longest := appendAll(b, ls, 1, payload)
			b.StopTimer()
			b.ReportMetric(float64(longest)/1e6, "max-append-ms")
			for _, l := range ls {
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// noWriteBackFS is OSFS whose files do not implement WriteBacker.
type noWriteBackFS struct{ OSFS }

type noWriteBackFile struct{ f File }

func (n noWriteBackFS) Create(name string) (File, error) {
	f, err := n.OSFS.Create(name)
	return noWriteBackFile{f}, err
}

func (n noWriteBackFS) OpenReadWrite(name string) (File, error) {
	f, err := n.OSFS.OpenReadWrite(name)
	return noWriteBackFile{f}, err
}

func (n noWriteBackFile) ReadAt(p []byte, off int64) (int, error)  { return n.f.ReadAt(p, off) }
func (n noWriteBackFile) WriteAt(p []byte, off int64) (int, error) { return n.f.WriteAt(p, off) }
func (n noWriteBackFile) Sync() error                              { return n.f.Sync() }
func (n noWriteBackFile) Truncate(size int64) error                { return n.f.Truncate(size) }
func (n noWriteBackFile) Size() (int64, error)                     { return n.f.Size() }
func (n noWriteBackFile) Close() error                             { return n.f.Close() }

// appendAll runs writers goroutines per Log, each appending payload until
// b.N appends were made in all, and returns how long that took and the
// longest single Append. An Append error fails the benchmark.
func appendAll(b *testing.B, logs []*Log, writers int, payload []byte) (elapsed, longest time.Duration) {
	var next, most atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range logs {
		for range writers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					t0 := time.Now()
					if _, err := l.Append(context.Background(), payload); err != nil {
						b.Error(err)
						return
					}
					d := int64(time.Since(t0))
					for cur := most.Load(); d > cur && !most.CompareAndSwap(cur, d); cur = most.Load() {
					}
				}
			})
		}
	}
	wg.Wait()
	return time.Since(start), time.Duration(most.Load())
}
