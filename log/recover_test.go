package log

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/replog/replog/wal"
)

// TestReopenUsesCheckpoint: after a clean Close, Open scans no batch;
// after a crash, it scans only what follows the last checkpoint.
func TestReopenUsesCheckpoint(t *testing.T) {
	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	opts.WAL.SegmentSize = 64 << 10
	opts.CheckpointInterval = -1
	l := mustOpen(t, opts)
	for i := range 500 {
		appendLeader(t, l, int32(1+i/100), fmt.Sprint(i))
	}
	if err := l.SetHighWatermark(400); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	if l.scanned != 0 {
		t.Fatalf("clean reopen scanned %d bytes", l.scanned)
	}
	if l.LogEndOffset() != 500 || l.HighWatermark() != 400 || len(l.Epochs()) != 5 {
		t.Fatalf("clean reopen: end %d hw %d epochs %v", l.LogEndOffset(), l.HighWatermark(), l.Epochs())
	}
	checkInvariants(t, l)
	// A crash after 20 more appends: only those are scanned.
	before := l.wal.WrittenEnd()
	for i := range 20 {
		appendLeader(t, l, 6, fmt.Sprint(i))
	}
	tail := int64(l.wal.WrittenEnd() - before)
	crash(l, ffs, fsys, wal.CrashOptions{})
	l = mustOpen(t, opts)
	defer l.Close()
	if l.scanned != tail {
		t.Fatalf("crash reopen scanned %d bytes, the tail is %d", l.scanned, tail)
	}
	if l.LogEndOffset() != 520 || l.HighWatermark() != 400 {
		t.Fatalf("crash reopen: end %d hw %d", l.LogEndOffset(), l.HighWatermark())
	}
	checkInvariants(t, l)
}

// TestBadCheckpointFallsBack: a damaged or lying checkpoint costs a full
// scan, never data.
func TestBadCheckpointFallsBack(t *testing.T) {
	for name, damage := range map[string]func(fsys wal.FS){
		"garbage": func(fsys wal.FS) {
			if err := wal.WriteFileAtomic(fsys, "/log/"+checkpointName, []byte("nonsense")); err != nil {
				t.Fatal(err)
			}
		},
		"mid-frame cover": func(fsys wal.FS) {
			ck := &checkpoint{CoverPos: 10, CoverOffset: 3, HighWater: 2, Epochs: []EpochEntry{{7, 0}}, Index: []indexEntry{}}
			if err := wal.WriteFileAtomic(fsys, "/log/"+checkpointName, encodeCheckpoint(ck)); err != nil {
				t.Fatal(err)
			}
		},
		"beyond the end": func(fsys wal.FS) {
			ck := &checkpoint{CoverPos: 1 << 40, CoverOffset: 1 << 30, HighWater: 1 << 20, Index: []indexEntry{}}
			if err := wal.WriteFileAtomic(fsys, "/log/"+checkpointName, encodeCheckpoint(ck)); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := wal.NewMemFS()
			opts := testOptions(fsys, newClock())
			l := mustOpen(t, opts)
			for i := range 50 {
				appendLeader(t, l, 1+int32(i/20), fmt.Sprint(i))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			damage(fsys)
			l = mustOpen(t, opts)
			defer l.Close()
			if l.LogEndOffset() != 50 || fmt.Sprint(l.Epochs()) != "[{1 0} {2 20} {3 40}]" {
				t.Fatalf("end %d epochs %v", l.LogEndOffset(), l.Epochs())
			}
			checkInvariants(t, l)
		})
	}
}

// TestFaultLoop fails the i-th FS operation of a short life (open,
// appends, a truncation, retention, close) for every i: no panic, no hang;
// what was acknowledged before the fault, and not given up by truncation
// or retention, is there after a clean reopen.
func TestFaultLoop(t *testing.T) {
	value := string(make([]byte, 300)) // ~10 frames per 4 KiB segment
	life := func(fsys wal.FS) (acked []string, err error) {
		opts := testOptions(fsys, newClock())
		opts.CheckpointInterval = -1
		opts.RetentionBytes = 1
		l, err := Open(opts)
		if err != nil {
			return nil, err
		}
		defer func() { _ = l.Close() }()
		ctx := context.Background()
		for i := range 30 {
			v := fmt.Sprint(i) + value
			if _, _, err := l.AppendLeader(ctx, 1, vals(v)); err != nil {
				return acked, err
			}
			acked = append(acked, v)
			switch i {
			case 8:
				// Failed or not, the records from 7 on are no longer
				// promised.
				acked = acked[:7]
				if err := l.TruncateTo(ctx, 7); err != nil {
					return acked, err
				}
			case 25:
				if err := l.SetHighWatermark(20); err != nil {
					return acked, err
				}
				if _, err := l.EnforceRetention(context.Background()); err != nil {
					return acked, err
				}
			}
		}
		return acked, l.Close()
	}
	counter := wal.NewFaultFS(wal.NewMemFS())
	if _, err := life(counter); err != nil {
		t.Fatal(err)
	}
	total := counter.Count()
	if l := mustOpen(t, testOptions(counter, newClock())); l.LogStartOffset() == 0 || l.Close() != nil {
		t.Fatal("the fault-free life must end with retention having moved the start")
	}
	for i := range total {
		mem := wal.NewMemFS()
		ffs := wal.NewFaultFS(mem)
		ffs.Inject(wal.Fault{N: i})
		acked, _ := life(ffs)
		l, err := Open(testOptions(mem, newClock()))
		if err != nil {
			t.Fatalf("fault %d of %d: reopen: %v", i, total, err)
		}
		start, end := l.LogStartOffset(), l.LogEndOffset()
		if end < int64(len(acked)) || start > 20 {
			t.Fatalf("fault %d: log [%d, %d), %d acknowledged", i, start, end, len(acked))
		}
		for _, r := range readAll(t, l, start, int64(len(acked))) {
			if string(r.Value) != acked[r.Offset] {
				t.Fatalf("fault %d: offset %d holds %.4q, acknowledged %.4q", i, r.Offset, r.Value, acked[r.Offset])
			}
		}
		checkInvariants(t, l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackgroundCheckpointsBoundTheScan: with background checkpoints every
// CheckpointInterval bytes, a crash makes Open scan at most about that
// much (SyncAlways), or that plus one segment (SyncNever, where a
// checkpoint covers only what segment rolls synced: it never syncs the
// wal itself).
func TestBackgroundCheckpointsBoundTheScan(t *testing.T) {
	for _, d := range []wal.Durability{wal.SyncAlways, wal.SyncNever} {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := wal.NewMemFS()
				ffs := wal.NewFaultFS(mem)
				opts := testOptions(ffs, newClock())
				opts.WAL.Durability = d
				opts.WAL.SegmentSize = 32 << 10
				opts.CheckpointInterval = 8 << 10
				l := mustOpen(t, opts)
				value := string(make([]byte, 500))
				for i := range 400 {
					appendLeader(t, l, 1, value)
					if i%10 == 0 {
						synctest.Wait() // let the checkpoint goroutine run
					}
				}
				synctest.Wait()
				crash(l, ffs, mem, wal.CrashOptions{})
				l = mustOpen(t, opts)
				defer l.Close()
				bound := opts.CheckpointInterval + 1024
				if d == wal.SyncNever {
					bound += opts.WAL.SegmentSize
				}
				if l.scanned > bound {
					t.Fatalf("crash reopen scanned %d bytes, bound %d", l.scanned, bound)
				}
				checkInvariants(t, l)
			})
		})
	}
}
