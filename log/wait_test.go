package log

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/wal"
)

// TestWaitWakesExactlyThosePassed: waiters on many offsets; each high
// watermark advance releases exactly the waiters below it; Close releases
// the rest with ErrClosed; a cancelled waiter returns ctx's error.
func TestWaitWakesExactlyThosePassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
		for range 20 {
			appendLeader(t, l, 1, "x")
		}
		const n = 20
		results := make([]chan error, n)
		for i := range n {
			results[i] = make(chan error, 1)
			go func() { results[i] <- l.Wait(context.Background(), int64(i)) }()
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancelled := make(chan error, 1)
		go func() { cancelled <- l.Wait(ctx, 100) }()
		synctest.Wait() // all blocked
		done := func(i int) bool {
			select {
			case err := <-results[i]:
				if err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
				results[i] = nil
				return true
			default:
				return false
			}
		}
		woken := 0
		for _, hw := range []int64{3, 3, 10, 11} {
			if err := l.SetHighWatermark(hw); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			for i := range n {
				if results[i] == nil {
					continue
				}
				if got, want := done(i), int64(i) < hw; got != want {
					t.Fatalf("hw %d: waiter for %d woke=%v", hw, i, got)
				} else if got {
					woken++
				}
			}
		}
		if woken != 11 {
			t.Fatalf("woke %d waiters, want 11", woken)
		}
		if err := l.Wait(context.Background(), 5); err != nil {
			t.Fatalf("Wait below the high watermark: %v", err)
		}
		cancel()
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for i := 11; i < n; i++ {
			if err := <-results[i]; !errors.Is(err, ErrClosed) {
				t.Fatalf("waiter %d after Close: %v", i, err)
			}
		}
		if err := l.Wait(context.Background(), 50); !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait after Close: %v", err)
		}
	})
}

// TestWaitEndWakesOnAppend: a leader serving a fetch at the log end waits
// for the next append.
func TestWaitEndWakesOnAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustOpen(t, testOptions(wal.NewMemFS(), newClock()))
		defer l.Close()
		appendLeader(t, l, 1, "a")
		got := make(chan error, 1)
		go func() { got <- l.WaitEnd(context.Background(), 1) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("WaitEnd returned before an append: %v", err)
		default:
		}
		appendLeader(t, l, 1, "b")
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		if err := l.WaitEnd(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStorageStallSurfaces: a stalled sync fails appends with an error
// that errors.Is finds wal.ErrStorageStalled in, within the sync timeout.
func TestStorageStallSurfaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stall := wal.NewStallFS(wal.NewMemFS())
		opts := testOptions(stall, newClock())
		opts.WAL.SyncTimeout = 2e9
		l := mustOpen(t, opts)
		appendLeader(t, l, 1, "a")
		stall.Stall()
		_, _, err := l.AppendLeader(context.Background(), 1, vals("b"))
		if !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("append on a stalled disk: %v", err)
		}
		if !errors.Is(l.Err(), wal.ErrStorageStalled) {
			t.Fatalf("Err: %v", l.Err())
		}
		if _, _, err := l.AppendLeader(context.Background(), 1, vals("c")); !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("append after the stall: %v", err)
		}
		if got := l.LogEndOffset(); got != 1 {
			t.Fatalf("log end %d, want 1: the stalled batch is not acknowledged", got)
		}
		if err := l.Close(); !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("Close: %v", err)
		}
		stall.Release()
		synctest.Wait()
	})
}

// TestStalledCheckpointDoesNotHangClose: the disk stalls on the
// checkpoint file's sync alone (the wal stays healthy): Close returns
// within the sync timeout with ErrStorageStalled instead of hanging.
func TestStalledCheckpointDoesNotHangClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := &checkpointStallFS{FS: wal.NewMemFS(), release: make(chan struct{})}
		opts := testOptions(fsys, newClock())
		opts.WAL.SyncTimeout = 2e9
		l := mustOpen(t, opts)
		appendLeader(t, l, 1, "a")
		if err := l.Close(); !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("Close with a stalled checkpoint: %v", err)
		}
		close(fsys.release)
		synctest.Wait()
	})
}

// checkpointStallFS blocks the Sync of the checkpoint's temporary file
// until release is closed.
type checkpointStallFS struct {
	wal.FS
	release chan struct{}
}

func (s *checkpointStallFS) Create(name string) (wal.File, error) {
	f, err := s.FS.Create(name)
	if err != nil || filepath.Base(name) != checkpointName+".tmp" {
		return f, err
	}
	return stallSyncFile{File: f, release: s.release}, nil
}

type stallSyncFile struct {
	wal.File
	release chan struct{}
}

func (f stallSyncFile) Sync() error {
	<-f.release
	return f.File.Sync()
}

// TestTruncateRefusedWhileACheckpointWriteIsStuck: a checkpoint write
// abandoned on a stalled disk must not land after a newer one, so
// TruncateTo (which writes one first) fails until it has returned, and
// works again after.
func TestTruncateRefusedWhileACheckpointWriteIsStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := &checkpointStallFS{FS: wal.NewMemFS(), release: make(chan struct{})}
		opts := testOptions(fsys, newClock())
		opts.WAL.SyncTimeout = 2e9
		opts.CheckpointInterval = 1 // a background checkpoint after every append
		l := mustOpen(t, opts)
		defer l.Close()
		for range 4 {
			appendLeader(t, l, 1, "a")
		}
		synctest.Wait() // the background checkpoint is stuck in its sync
		// Let the fake clock pass the sync deadline: the background
		// checkpoint gives up (its write stays stuck).
		time.Sleep(3 * time.Second)
		synctest.Wait()
		ctx := context.Background()
		if err := l.TruncateTo(ctx, 2); !errors.Is(err, wal.ErrStorageStalled) {
			t.Fatalf("TruncateTo with a stuck checkpoint write: %v", err)
		}
		if l.LogEndOffset() != 4 {
			t.Fatalf("a refused truncation changed the log: end %d", l.LogEndOffset())
		}
		close(fsys.release)
		synctest.Wait()
		if err := l.TruncateTo(ctx, 2); err != nil || l.LogEndOffset() != 2 {
			t.Fatalf("TruncateTo after the disk came back: %v, end %d", err, l.LogEndOffset())
		}
	})
}

// A Wait the high watermark released stays released, even if a
// truncation lowers the high watermark before the waiter runs: it
// returns nil, not ErrClosed, on an open log.
func TestReleasedWaitStaysReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := testOptions(wal.NewMemFS(), newClock())
		opts.WAL.Durability = wal.SyncNever
		l := mustOpen(t, opts)
		defer l.Close()
		for i := range 10 {
			appendLeader(t, l, 1, string(rune('a'+i)))
		}
		errc := make(chan error, 1)
		go func() { errc <- l.Wait(context.Background(), 5) }()
		synctest.Wait() // the waiter is parked
		l.mu.Lock()
		l.mu.hw = 10 // SetHighWatermark(10) releases it,
		l.mu.hwWait.advance(10)
		l.mu.hw = 3 // and TruncateBelowHighWatermark(3) runs before it wakes
		l.mu.Unlock()
		if err := <-errc; err != nil {
			t.Fatalf("Wait released by the high watermark, then truncated below: %v (the log is open)", err)
		}
	})
}
