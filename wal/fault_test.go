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
// appends. It stops at the first error and returns it.
func faultScript(fsys FS, md *model) (err error) {
	ctx := context.Background()
	opts := Options{FS: fsys, Dir: testDir, SegmentSize: 300}
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
// crash, for half of them) recovers every acknowledged frame.
func TestFaultLoop(t *testing.T) {
	clean := NewFaultFS(NewMemFS())
	if err := faultScript(clean, newModel()); err != nil {
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
		err := faultScript(ffs, md)
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
