package wal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// openGroupLog opens a Log in dir on fsys that syncs through g (nil: its
// own syncs) and closes it at cleanup.
func openGroupLog(t testing.TB, fsys FS, dir string, g *SyncGroup, mod func(*Options)) *Log {
	t.Helper()
	opts := Options{FS: fsys, Dir: dir, SyncGroup: g}
	if mod != nil {
		mod(&opts)
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		_ = l.Close() // tests that care close it themselves and check
		<-l.Done()
	})
	return l
}

func groupDir(i int) string { return fmt.Sprintf("/data/wal%d", i) }

// appendAsync appends payload to l in a new goroutine and reports the
// result on the returned channel.
func appendAsync(l *Log, payload string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), []byte(payload))
		ch <- err
	}()
	return ch
}

// gateFS is a MemFS whose SyncFS announces each flush on entered (with the
// number of files it covers) and then waits for a permit.
type gateFS struct {
	*MemFS
	entered chan int
	permit  chan struct{}
}

func (g *gateFS) SyncFS(files []File) error {
	g.entered <- len(files)
	<-g.permit
	return g.MemFS.SyncFS(files)
}

// TestSyncGroupCrashKeepsAcked: Logs sharing a group on one MemFS, appended
// to concurrently (with segment rolls, and Sync under SyncNever), then a
// crash at a random moment, possibly tearing unsynced tails: every
// acknowledged frame of every Log survives, no holes.
func TestSyncGroupCrashKeepsAcked(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { groupCrashRun(t, seed) })
	}
}

func groupCrashRun(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 42))
	fsys := NewMemFS()
	const nlogs = 4
	durability := SyncAlways
	if rng.IntN(3) == 0 {
		durability = SyncNever
	}
	segSize := int64(512 + rng.IntN(4096))
	models := make([]*model, nlogs)
	for i := range models {
		models[i] = newModel()
	}
	for cycle := range 3 {
		g := NewSyncGroup() // a group does not outlive a crash
		logs := make([]*Log, nlogs)
		for i := range logs {
			l, err := Open(Options{FS: fsys, Dir: groupDir(i), SyncGroup: g,
				SegmentSize: segSize, Durability: durability})
			if err != nil {
				t.Fatalf("seed %d cycle %d: Open %d: %v", seed, cycle, i, err)
			}
			models[i].check(t, l, fmt.Sprintf("seed %d cycle %d log %d", seed, cycle, i))
			logs[i] = l
		}
		crashAt := 1 + rng.IntN(150)
		var mu sync.Mutex
		acks := 0
		crashed := make(chan struct{})
		torn := rng.IntN(2) == 0
		onAck := func() {
			mu.Lock()
			defer mu.Unlock()
			if acks++; acks == crashAt {
				fsys.Crash(CrashOptions{Torn: torn, Seed: seed*10 + uint64(cycle)})
				close(crashed)
			}
		}
		var wg sync.WaitGroup
		for i, l := range logs {
			wseed := rng.Uint64()
			wg.Go(func() { appendPhase(ctx, l, models[i], wseed, 3, 20, onAck) })
		}
		wg.Wait()
		select {
		case <-crashed:
		default:
			fsys.Crash(CrashOptions{Torn: torn, Seed: seed*10 + uint64(cycle)})
		}
		for _, l := range logs {
			_ = l.Close() // fails: its files went with the crash
			<-l.Done()
		}
		if g.Stats().Flushes == 0 {
			t.Fatalf("seed %d cycle %d: no flush went through the group", seed, cycle)
		}
	}
}

// TestSyncGroupFlushCoversUnsyncedFiles: with every File.Sync failing, Logs
// sharing a group still acknowledge appends, and after a crash every
// acknowledged frame is there: the group's flushes, not the files' own
// syncs, made them durable.
func TestSyncGroupFlushCoversUnsyncedFiles(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	ffs := NewFaultFS(m)
	g := NewSyncGroup()
	const nlogs = 3
	logs := make([]*Log, nlogs)
	for i := range logs {
		logs[i] = openGroupLog(t, ffs, groupDir(i), g, nil) // creates and syncs a segment
	}
	ffs.Inject(Fault{Ops: OpSync, Sticky: true}) // from now on every File.Sync fails
	models := make([]*model, nlogs)
	var wg sync.WaitGroup
	for i, l := range logs {
		models[i] = newModel()
		wg.Go(func() { appendPhase(ctx, l, models[i], uint64(i), 3, 15, nil) })
	}
	wg.Wait()
	for i, l := range logs {
		if err := l.Err(); err != nil {
			t.Fatalf("log %d failed: %v", i, err)
		}
		if len(models[i].acked) != 3*15 {
			t.Fatalf("log %d: %d appends acknowledged, want %d", i, len(models[i].acked), 3*15)
		}
	}
	if n := ffs.Fired(); n != 0 {
		t.Fatalf("%d File.Sync calls were made (and failed)", n)
	}
	if st := g.Stats(); st.Flushes == 0 || st.Flushes > st.Syncs {
		t.Fatalf("group stats %+v", st)
	}
	m.Crash(CrashOptions{Torn: true, Seed: 1})
	for _, l := range logs {
		_ = l.Close()
		<-l.Done()
	}
	ffs.Reset()
	for i := range logs {
		l := openGroupLog(t, m, groupDir(i), nil, nil)
		models[i].check(t, l, fmt.Sprintf("log %d", i))
	}
}

// TestSyncGroupMergesWaitingSyncs: while one flush is blocked, the Logs that
// write meanwhile all wait for the next flush, and that one flush covers
// them all: two flushes for n syncs.
func TestSyncGroupMergesWaitingSyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sfs := NewStallFS(NewMemFS())
		g := NewSyncGroup()
		const n = 6
		logs := make([]*Log, n)
		for i := range logs {
			logs[i] = openGroupLog(t, sfs, groupDir(i), g, nil)
		}
		sfs.Stall()
		t.Cleanup(sfs.Release) // before the Logs' cleanups, should the test fail
		results := []<-chan error{appendAsync(logs[0], "first")}
		synctest.Wait() // log 0's flush is blocked
		if sfs.Waiting() != 1 {
			t.Fatalf("%d syncs blocked, want log 0's flush", sfs.Waiting())
		}
		for _, l := range logs[1:] {
			results = append(results, appendAsync(l, "joins the next flush"))
		}
		synctest.Wait()
		if sfs.Waiting() != 1 {
			t.Fatalf("%d syncs blocked: the later Logs did not wait for the group", sfs.Waiting())
		}
		for i, l := range logs[1:] {
			if l.WrittenEnd() == 0 || l.DurableEnd() != 0 {
				t.Fatalf("log %d: written %d durable %d, want written and not durable",
					i+1, l.WrittenEnd(), l.DurableEnd())
			}
		}
		sfs.Release()
		for i, ch := range results {
			if err := <-ch; err != nil {
				t.Fatalf("log %d: %v", i, err)
			}
		}
		if st := g.Stats(); st.Syncs != n || st.Flushes != 2 {
			t.Fatalf("group stats %+v, want %d syncs in 2 flushes", st, n)
		}
		for i, l := range logs {
			if l.DurableEnd() != l.WrittenEnd() {
				t.Fatalf("log %d: durable %d of %d", i, l.DurableEnd(), l.WrittenEnd())
			}
		}
	})
}

// TestSyncGroupLateCallerWaitsForNextFlush: a Log that writes while a flush
// runs is not released by that flush (it started before the write
// returned), only by the next one.
func TestSyncGroupLateCallerWaitsForNextFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gfs := &gateFS{MemFS: NewMemFS(), entered: make(chan int, 4), permit: make(chan struct{})}
		g := NewSyncGroup()
		a := openGroupLog(t, gfs, groupDir(0), g, nil)
		b := openGroupLog(t, gfs, groupDir(1), g, nil)
		t.Cleanup(func() { close(gfs.permit) }) // should the test fail with a flush held
		aDone := appendAsync(a, "a")
		if n := <-gfs.entered; n != 1 {
			t.Fatalf("flush 1 covers %d files, want a's", n)
		}
		bDone := appendAsync(b, "b")
		synctest.Wait() // b written, waiting for the group
		if b.WrittenEnd() == 0 {
			t.Fatal("b's frame not written")
		}
		if len(gfs.entered) != 0 {
			t.Fatal("a second flush started while the first runs")
		}
		gfs.permit <- struct{}{} // flush 1 returns
		if err := <-aDone; err != nil {
			t.Fatal(err)
		}
		if n := <-gfs.entered; n != 1 {
			t.Fatalf("flush 2 covers %d files, want b's", n)
		}
		synctest.Wait()
		if b.DurableEnd() != 0 {
			t.Fatalf("b durable to %d before the flush that started after its write returned", b.DurableEnd())
		}
		select {
		case err := <-bDone:
			t.Fatalf("b's append returned (%v) with flush 1, which started before its write", err)
		default:
		}
		gfs.permit <- struct{}{} // flush 2 returns
		if err := <-bDone; err != nil {
			t.Fatal(err)
		}
		if b.DurableEnd() != b.WrittenEnd() {
			t.Fatalf("b durable %d of %d", b.DurableEnd(), b.WrittenEnd())
		}
		if st := g.Stats(); st.Syncs != 2 || st.Flushes != 2 {
			t.Fatalf("group stats %+v", st)
		}
	})
}

// TestSyncGroupFailedFlushFailsCoveredLogs: a failed flush fails every Log
// it covered with the error; the group is failed, so a Log whose earlier
// flush succeeded fails at its next sync, and no flush is ever issued
// again. What was acknowledged before survives.
func TestSyncGroupFailedFlushFailsCoveredLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemFS()
		ffs := NewFaultFS(m)
		sfs := NewStallFS(ffs)
		g := NewSyncGroup()
		const n = 4
		logs := make([]*Log, n)
		for i := range logs {
			logs[i] = openGroupLog(t, sfs, groupDir(i), g, nil)
		}
		sfs.Stall()
		t.Cleanup(sfs.Release) // before the Logs' cleanups, should the test fail
		first := appendAsync(logs[0], "acknowledged")
		synctest.Wait()
		var rest []<-chan error
		for _, l := range logs[1:] {
			rest = append(rest, appendAsync(l, "lost"))
		}
		synctest.Wait()
		// Flush 1 (log 0) is blocked before reaching ffs; flush 2 (the
		// others) is the second SyncFS ffs sees.
		ffs.Inject(Fault{Ops: OpSyncFS, N: 1, Err: syscall.EIO})
		sfs.Release()
		if err := <-first; err != nil {
			t.Fatalf("log 0: %v", err)
		}
		for i, ch := range rest {
			if err := <-ch; !errors.Is(err, syscall.EIO) {
				t.Fatalf("log %d: append = %v, want EIO", i+1, err)
			}
			if err := logs[i+1].Err(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("log %d: Err = %v", i+1, err)
			}
		}
		if !errors.Is(g.Err(), syscall.EIO) {
			t.Fatalf("group Err = %v", g.Err())
		}
		flushes := g.Stats().Flushes
		if _, err := logs[0].Append(context.Background(), []byte("after")); !errors.Is(err, syscall.EIO) {
			t.Fatalf("log 0 after the failed flush: %v", err)
		}
		if !errors.Is(logs[0].Err(), syscall.EIO) {
			t.Fatalf("log 0 Err = %v", logs[0].Err())
		}
		if g.Stats().Flushes != flushes || ffs.Fired() != 1 {
			t.Fatalf("flushed again after a failed flush: %d -> %d (%d faults)",
				flushes, g.Stats().Flushes, ffs.Fired())
		}
		for _, l := range logs {
			_ = l.Close()
			<-l.Done()
		}
		m.Crash(CrashOptions{})
		l := openGroupLog(t, m, groupDir(0), nil, nil)
		frames := readAll(t, l, 0)
		if len(frames) == 0 || string(frames[0].Payload) != "acknowledged" {
			t.Fatalf("log 0 after recovery: %d frames", len(frames))
		}
	})
}

// TestSyncGroupStallFailsEveryLogAtDeadline: with the group's flush blocked,
// every Log waiting for it (the one running it and those queued behind it)
// fails with ErrStorageStalled exactly at its SyncTimeout, while the flush
// is still blocked; Close returns at once; the writers exit once the
// flush returns.
func TestSyncGroupStallFailsEveryLogAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		sfs := NewStallFS(NewMemFS())
		g := NewSyncGroup()
		const n = 4
		logs := make([]*Log, n)
		for i := range logs {
			logs[i] = openGroupLog(t, sfs, groupDir(i), g, func(o *Options) { o.SyncTimeout = stallTimeout })
			if _, err := logs[i].Append(ctx, []byte("before")); err != nil {
				t.Fatal(err)
			}
		}
		sfs.Stall()
		t.Cleanup(sfs.Release) // before the Logs' cleanups, should the test fail
		start := time.Now()
		var results []<-chan error
		for _, l := range logs {
			results = append(results, appendAsync(l, "stalled"))
		}
		for i, ch := range results {
			if err := <-ch; !errors.Is(err, ErrStorageStalled) {
				t.Fatalf("log %d: append = %v", i, err)
			}
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("appends failed after %v, want SyncTimeout %v", d, stallTimeout)
		}
		if sfs.Waiting() != 1 {
			t.Fatalf("%d flushes blocked, want 1", sfs.Waiting())
		}
		for i, l := range logs {
			if err := l.Close(); !errors.Is(err, ErrStorageStalled) {
				t.Fatalf("log %d: Close = %v", i, err)
			}
			select {
			case <-l.Done():
				t.Fatalf("log %d: writer exited while its flush is blocked", i)
			default:
			}
		}
		if time.Since(start) != stallTimeout {
			t.Fatalf("Close took %v", time.Since(start)-stallTimeout)
		}
		sfs.Release()
		for _, l := range logs {
			<-l.Done()
		}
		for i := range logs {
			l := openGroupLog(t, sfs, groupDir(i), nil, nil)
			if b, _, err := l.ReadAt(0, nil); err != nil || string(b) != "before" {
				t.Fatalf("log %d after the stall: %q, %v", i, b, err)
			}
		}
	})
}

// TestSyncGroupWithoutFSSyncer: on an FS without FSSyncer each Log syncs
// its own file; the group issues no flush and everything still works.
func TestSyncGroupWithoutFSSyncer(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	hook := &syncHookFS{FS: m} // no SyncFS
	g := NewSyncGroup()
	const n = 3
	models := make([]*model, n)
	var wg sync.WaitGroup
	for i := range n {
		l := openGroupLog(t, hook, groupDir(i), g, nil)
		models[i] = newModel()
		wg.Go(func() { appendPhase(ctx, l, models[i], uint64(i), 2, 10, nil) })
	}
	wg.Wait()
	if st := g.Stats(); st.Flushes != 0 || st.Syncs == 0 {
		t.Fatalf("group stats %+v, want syncs and no flush", st)
	}
	m.Crash(CrashOptions{})
	for i := range n {
		models[i].check(t, openGroupLog(t, m, groupDir(i), nil, nil), fmt.Sprintf("log %d", i))
	}
}

// TestSyncGroupSeparateFS: Logs on two MemFS share a group; each FS gets
// its own flushes (a flush handed another FS's file would fail), and each
// keeps what was acknowledged.
func TestSyncGroupSeparateFS(t *testing.T) {
	ctx := context.Background()
	g := NewSyncGroup()
	fss := []*MemFS{NewMemFS(), NewMemFS()}
	models := []*model{newModel(), newModel()}
	var wg sync.WaitGroup
	for i, m := range fss {
		for j := range 2 {
			l := openGroupLog(t, m, groupDir(j), g, nil)
			md := newModel()
			if j == 0 {
				md = models[i]
			}
			wg.Go(func() { appendPhase(ctx, l, md, uint64(10*i+j), 2, 15, nil) })
		}
	}
	wg.Wait()
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	for i, m := range fss {
		m.Crash(CrashOptions{})
		models[i].check(t, openGroupLog(t, m, groupDir(0), nil, nil), fmt.Sprintf("fs %d", i))
	}
}

// TestMemFSSyncFS: SyncFS makes every file's data durable, the files
// named or not, but not directory entries; handles from before a crash or
// from another FS fail it.
func TestMemFSSyncFS(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	a, err := m.Create("/d/a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Create("/d/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	c, err := m.Create("/d/c") // entry never synced
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []File{a, b, c} {
		if _, err := f.WriteAt([]byte("data"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SyncFS([]File{a}); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncFS([]File{osFile{}}); !errors.Is(err, os.ErrInvalid) {
		t.Fatalf("SyncFS of a foreign file = %v", err)
	}
	m.Crash(CrashOptions{Torn: true})
	for _, name := range []string{"/d/a", "/d/b"} {
		if size, err := m.Stat(name); err != nil || size != 4 {
			t.Fatalf("%s after the crash: size %d, %v", name, size, err)
		}
	}
	if _, err := m.Stat("/d/c"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("/d/c survived without SyncDir: %v", err)
	}
	if err := m.SyncFS([]File{a}); !errors.Is(err, ErrCrashed) {
		t.Fatalf("SyncFS with a handle from before the crash = %v", err)
	}
}

// TestOSFSSyncGroup: Logs on the OS file system share a group (syncfs on
// Linux); appends are acknowledged, flushes are shared, and the frames are
// there after reopening. OSFS.SyncFS refuses another FS's files.
func TestOSFSSyncGroup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := NewSyncGroup()
	const n = 3
	models := make([]*model, n)
	var wg sync.WaitGroup
	logs := make([]*Log, n)
	for i := range n {
		logs[i] = openGroupLog(t, OSFS{}, filepath.Join(dir, fmt.Sprint(i)), g, nil)
		models[i] = newModel()
		wg.Go(func() { appendPhase(ctx, logs[i], models[i], uint64(i), 2, 10, nil) })
	}
	wg.Wait()
	if st := g.Stats(); st.Flushes == 0 || g.Err() != nil {
		t.Fatalf("group stats %+v, err %v", st, g.Err())
	}
	for i, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatalf("log %d: Close: %v", i, err)
		}
		models[i].check(t, openGroupLog(t, OSFS{}, filepath.Join(dir, fmt.Sprint(i)), nil, nil), fmt.Sprintf("log %d", i))
	}
	if err := (OSFS{}).SyncFS([]File{&memFile{}}); err == nil {
		t.Fatal("OSFS.SyncFS took a MemFS file")
	}
}
