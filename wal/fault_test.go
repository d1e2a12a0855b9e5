package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

// faultScript is a scripted run over fsys: appends across segment rolls,
// syncs, a truncation, retention, reads, a clean Close, a reopen and more
// appends; its syncs go through g if not nil. It stops at the first error
// and returns it.
func faultScript(fsys FS, md *model, g *SyncGroup) (err error) {
	ctx := context.Background()
	opts := Options{FS: fsys, Dir: testDir, SegmentSize: 300, SyncGroup: g}
	l, err := Open(opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); err == nil && !errors.Is(cerr, ErrClosed) {
			err = cerr
		}
		<-l.Done()
	}()
	var pos []Pos
	for i := range 30 {
		s := fmt.Sprintf("frame %d %s", i, payloadOf(i))
		p, end, err := l.Enqueue(ctx, []byte(s))
		if err != nil {
			return err
		}
		md.enqueue(p, s)
		if err := l.Wait(ctx, end); err != nil {
			return err
		}
		md.ack(p, s)
		pos = append(pos, p)
		switch i {
		case 7, 21:
			if err := l.Sync(ctx); err != nil {
				return err
			}
		case 15:
			md.dropFrom(pos[10])
			if err := l.TruncateAfter(ctx, pos[10]); err != nil {
				return err
			}
			pos = pos[:10]
		case 25:
			if _, err := l.DeleteBefore(pos[12]); err != nil {
				return err
			}
		}
	}
	r, err := l.NewReader(l.Start())
	if err != nil {
		return err
	}
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.Close()
			return err
		}
	}
	r.Close()
	if err := l.Close(); err != nil {
		return err
	}
	l2, err := Open(opts)
	if err != nil {
		return err
	}
	l = l2
	for i := range 5 {
		s := fmt.Sprintf("after reopen %d", i)
		p, end, err := l.Enqueue(ctx, []byte(s))
		if err != nil {
			return err
		}
		md.enqueue(p, s)
		if err := l.Wait(ctx, end); err != nil {
			return err
		}
		md.ack(p, s)
	}
	return nil
}

// TestFaultLoop fails operation i of the scripted run, for every i, with
// EIO or ENOSPC (sometimes after a short write). Either the run reports the
// injected error, or nothing was lost; and a reopen without faults (after a
// crash, for half of them) recovers every acknowledged frame. It runs with
// the Log syncing on its own and through a SyncGroup (whose flushes are
// operations to fail too).
func TestFaultLoop(t *testing.T) {
	t.Run("own-syncs", func(t *testing.T) { faultLoop(t, false) })
	t.Run("sync-group", func(t *testing.T) { faultLoop(t, true) })
}

func faultLoop(t *testing.T, group bool) {
	newGroup := func() *SyncGroup {
		if group {
			return NewSyncGroup()
		}
		return nil
	}
	clean := NewFaultFS(NewMemFS())
	if err := faultScript(clean, newModel(), newGroup()); err != nil {
		t.Fatalf("run without faults: %v", err)
	}
	total := clean.Count()
	if total < 100 {
		t.Fatalf("only %d operations in the script", total)
	}
	reported := 0
	for i := range total + 5 {
		m := NewMemFS()
		ffs := NewFaultFS(m)
		injected := error(syscall.EIO)
		if i%2 == 1 {
			injected = syscall.ENOSPC
		}
		ffs.Inject(Fault{N: i, Err: injected, Short: i%3 == 0})
		md := newModel()
		err := faultScript(ffs, md, newGroup())
		if ffs.Fired() == 0 && err != nil {
			t.Fatalf("op %d: no fault fired but the run failed: %v", i, err)
		}
		if err != nil {
			reported++
			if !errors.Is(err, injected) {
				t.Fatalf("op %d: run failed with %v, not the injected %v", i, err, injected)
			}
		}
		ffs.Reset()
		if i%2 == 0 {
			m.Crash(CrashOptions{Torn: true, Seed: uint64(i)})
		}
		l, err := Open(Options{FS: m, Dir: testDir, SegmentSize: 300})
		if err != nil {
			t.Fatalf("op %d (of %d): reopen after the fault: %v", i, total, err)
		}
		md.check(t, l, fmt.Sprintf("op %d", i))
		if _, err := l.Append(context.Background(), []byte("still works")); err != nil {
			t.Fatalf("op %d: append after recovery: %v", i, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("op %d: close: %v", i, err)
		}
	}
	t.Logf("%d operations, %d runs reported the fault", total, reported)
}

// TestFailedSyncIsSticky: after a failed sync the Log is failed, returns the
// cause wrapped, and never syncs again (not even on Close).
func TestFailedSyncIsSticky(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	ffs := NewFaultFS(m)
	l := openT(t, ffs, nil)
	if _, err := l.Append(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	ffs.Inject(Fault{Ops: OpSync | OpSyncDir, N: 0, Err: syscall.EIO})
	if _, err := l.Append(ctx, []byte("fails")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing sync = %v", err)
	}
	if !errors.Is(l.Err(), syscall.EIO) {
		t.Fatalf("Err() = %v", l.Err())
	}
	ffs.Reset()
	syncs := l.Stats().Syncs
	if _, err := l.Append(ctx, []byte("after")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after the failure = %v", err)
	}
	if err := l.Sync(ctx); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync after the failure = %v", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close = %v", err)
	}
	if l.Stats().Syncs != syncs {
		t.Fatalf("synced again after a failed sync: %d -> %d", syncs, l.Stats().Syncs)
	}
	m.Crash(CrashOptions{})
	l2 := openT(t, m, nil)
	frames := readAll(t, l2, 0)
	if len(frames) != 1 || string(frames[0].Payload) != "ok" {
		t.Fatalf("after recovery: %d frames", len(frames))
	}
}

// TestShortWriteIsNeverRead: a write that ran out of space half way fails
// the Log; the half frame is neither readable nor kept on reopen.
func TestShortWriteIsNeverRead(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	ffs := NewFaultFS(m)
	l := openT(t, ffs, nil)
	if _, err := l.Append(ctx, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	ffs.Inject(Fault{Ops: OpWrite, N: 0, Err: syscall.ENOSPC, Short: true})
	_, err := l.Append(ctx, make([]byte, 200))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append = %v, want ENOSPC", err)
	}
	end := Pos(frameSize(len("whole")))
	if l.WrittenEnd() != end {
		t.Fatalf("written end %d, want %d", l.WrittenEnd(), end)
	}
	if _, _, err := l.ReadAt(end, nil); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadAt(half frame) = %v", err)
	}
	if got := len(readAll(t, l, 0)); got != 1 {
		t.Fatalf("reader sees %d frames", got)
	}
	_ = l.Close()
	ffs.Reset()
	if size, _ := m.Stat(join(testDir, segmentName(0))); size <= SegmentHeaderSize+int64(end) {
		t.Fatalf("the short write left nothing behind (size %d); the test proves nothing", size)
	}
	l2 := openT(t, m, nil)
	if l2.WrittenEnd() != end || len(readAll(t, l2, 0)) != 1 {
		t.Fatalf("reopened: end %d", l2.WrittenEnd())
	}
}
