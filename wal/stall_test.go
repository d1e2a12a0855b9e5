package wal

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const stallTimeout = 50 * time.Millisecond

// TestStallFailsWaitersAtDeadline: with a sync blocked, the appenders
// waiting for it fail with ErrStorageStalled exactly when SyncTimeout has
// passed (the fake clock does not move while the sync stays blocked), later
// appends fail at once, and Close returns at once.
func TestStallFailsWaitersAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sfs := NewStallFS(NewMemFS())
		l, err := Open(Options{FS: sfs, Dir: testDir, SyncTimeout: stallTimeout})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, []byte("before")); err != nil {
			t.Fatal(err)
		}
		durable := l.DurableEnd()
		sfs.Stall()
		start := time.Now()
		const n = 8
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := l.Append(ctx, []byte("stalled"))
				errs <- err
			})
		}
		synctest.Wait() // everyone blocked: the writer in Sync, the rest in Wait
		if sfs.Waiting() != 1 {
			t.Fatalf("%d syncs blocked, want 1", sfs.Waiting())
		}
		if len(errs) != 0 {
			t.Fatalf("an append returned while its sync is blocked: %v", <-errs)
		}
		wg.Wait()
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("appends failed after %v, want exactly SyncTimeout %v", d, stallTimeout)
		}
		close(errs)
		for err := range errs {
			if !errors.Is(err, ErrStorageStalled) {
				t.Fatalf("stalled append = %v", err)
			}
		}
		if !errors.Is(l.Err(), ErrStorageStalled) {
			t.Fatalf("Err() = %v", l.Err())
		}
		if _, err := l.Append(ctx, []byte("later")); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("later append = %v", err)
		}
		if err := l.Sync(ctx); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Sync = %v", err)
		}
		if err := l.TruncateAfter(ctx, 0); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("TruncateAfter = %v", err)
		}
		if l.DurableEnd() != durable {
			t.Fatalf("durable end moved to %d during the stall", l.DurableEnd())
		}
		closeAt := time.Now()
		if err := l.Close(); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Close = %v", err)
		}
		if time.Since(closeAt) != 0 {
			t.Fatalf("Close took %v", time.Since(closeAt))
		}
		select {
		case <-l.Done():
			t.Fatal("writer exited while its sync is still blocked")
		default:
		}
		sfs.Release()
		<-l.Done()
		// What was acknowledged before the stall survives.
		l2, err := Open(Options{FS: sfs, Dir: testDir})
		if err != nil {
			t.Fatal(err)
		}
		if b, _, err := l2.ReadAt(0, nil); err != nil || string(b) != "before" {
			t.Fatalf("after the stall: %q, %v", b, err)
		}
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCloseDuringStall: Close while a sync is blocked returns once the
// deadline passes, not when the sync returns.
func TestCloseDuringStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sfs := NewStallFS(NewMemFS())
		l, err := Open(Options{FS: sfs, Dir: testDir, SyncTimeout: stallTimeout, Durability: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, []byte("unsynced")); err != nil {
			t.Fatal(err)
		}
		sfs.Stall()
		start := time.Now()
		if err := l.Close(); !errors.Is(err, ErrStorageStalled) { // Close syncs, and that stalls
			t.Fatalf("Close = %v", err)
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("Close took %v, want %v", d, stallTimeout)
		}
		sfs.Release()
		<-l.Done()
	})
}

// TestStalledDirSync: the directory sync of a segment roll has the same
// deadline.
func TestStalledDirSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sfs := NewStallFS(NewMemFS())
		l, err := Open(Options{FS: sfs, Dir: testDir, SyncTimeout: stallTimeout, SegmentSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, make([]byte, 50)); err != nil {
			t.Fatal(err)
		}
		sfs.Stall()
		start := time.Now()
		if _, err := l.Append(ctx, make([]byte, 50)); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Append across a stalled roll = %v", err)
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("failed after %v", d)
		}
		_ = l.Close()
		sfs.Release()
		<-l.Done()
	})
}

// TestSlowSyncWithinDeadline: a sync that takes less than SyncTimeout is
// not a stall.
func TestSlowSyncWithinDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sfs := NewStallFS(NewMemFS())
		l, err := Open(Options{FS: sfs, Dir: testDir, SyncTimeout: stallTimeout})
		if err != nil {
			t.Fatal(err)
		}
		sfs.Stall()
		done := make(chan error, 1)
		go func() {
			_, err := l.Append(ctx, []byte("slow"))
			done <- err
		}()
		time.Sleep(stallTimeout - time.Millisecond) // fake clock: the sync is blocked this long
		synctest.Wait()
		sfs.Release()
		if err := <-done; err != nil {
			t.Fatalf("Append with a sync under the deadline = %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSyncInterval: under SyncInterval frames are written at once and synced
// when the interval has passed.
func TestSyncInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, err := Open(Options{FS: NewMemFS(), Dir: testDir, Durability: SyncInterval,
			SyncInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if l.DurableEnd() != 0 || l.WrittenEnd() == 0 {
			t.Fatalf("written %d durable %d right after the append", l.WrittenEnd(), l.DurableEnd())
		}
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if l.DurableEnd() != 0 {
			t.Fatal("synced before the interval")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if l.DurableEnd() != l.WrittenEnd() {
			t.Fatalf("not synced after the interval: durable %d written %d", l.DurableEnd(), l.WrittenEnd())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEnqueueBackPressure: Enqueue blocks while MaxPending bytes wait for a
// stalled writer, and returns ctx's error when ctx ends.
func TestEnqueueBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sfs := NewStallFS(NewMemFS())
		l, err := Open(Options{FS: sfs, Dir: testDir, MaxPending: 100, SyncTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		sfs.Stall()
		if _, _, err := l.Enqueue(ctx, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the writer took it and is blocked in its sync
		for range 3 {
			if _, _, err := l.Enqueue(ctx, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, _, err := l.Enqueue(cctx, make([]byte, 50)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Enqueue over MaxPending = %v", err)
		}
		sfs.Release()
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// writeStallFS blocks segment writes while stalled (a device whose queue
// is full, or dirty pages throttled), not syncs.
type writeStallFS struct {
	FS
	stalled chan struct{} // closed: writes block on release
	release chan struct{}
}

func (w *writeStallFS) Create(name string) (File, error) {
	f, err := w.FS.Create(name)
	return &writeStallFile{File: f, fs: w}, err
}

func (w *writeStallFS) OpenReadWrite(name string) (File, error) {
	f, err := w.FS.OpenReadWrite(name)
	return &writeStallFile{File: f, fs: w}, err
}

type writeStallFile struct {
	File
	fs *writeStallFS
}

func (f *writeStallFile) WriteAt(p []byte, off int64) (int, error) {
	select {
	case <-f.fs.stalled:
		<-f.fs.release
	default:
	}
	return f.File.WriteAt(p, off)
}

// TestStalledWrite: a segment write blocked past SyncTimeout fails the Log
// with ErrStorageStalled, even with no sync to notice (SyncNever), and
// Close returns at the deadline.
func TestStalledWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		wfs := &writeStallFS{FS: NewMemFS(), stalled: make(chan struct{}), release: make(chan struct{})}
		l, err := Open(Options{FS: wfs, Dir: testDir, SyncTimeout: stallTimeout, Durability: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, []byte("before")); err != nil {
			t.Fatal(err)
		}
		close(wfs.stalled)
		start := time.Now()
		if _, err := l.Append(ctx, []byte("stalled")); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Append during a stalled write = %v, want ErrStorageStalled", err)
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("the stalled write failed the Log after %v, want %v", d, stallTimeout)
		}
		if err := l.Close(); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Close = %v", err)
		}
		close(wfs.release)
		<-l.Done()
	})
}

// TestStalledRollWrite: a roll's header write has the deadline too.
func TestStalledRollWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wfs := &writeStallFS{FS: NewMemFS(), stalled: make(chan struct{}), release: make(chan struct{})}
		l, err := Open(Options{FS: wfs, Dir: testDir, SyncTimeout: stallTimeout, Durability: SyncNever,
			SegmentSize: SegmentHeaderSize + FrameHeaderSize + 16})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(context.Background(), make([]byte, 16)); err != nil { // fills the first segment
			t.Fatal(err)
		}
		close(wfs.stalled)
		start := time.Now()
		if _, err := l.Append(context.Background(), []byte("rolls")); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Append whose roll's header write stalls = %v, want ErrStorageStalled", err)
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("the stalled header write failed the Log after %v, want %v", d, stallTimeout)
		}
		if err := l.Close(); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Close = %v", err)
		}
		close(wfs.release)
		<-l.Done()
	})
}
