package wal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// openJournalLogs opens a journal (on jfs) and n Logs sharing it (on lfs).
func openJournalLogs(t testing.TB, jfs, lfs FS, n int, jopts JournalOptions, mod func(*Options)) (*Journal, []*Log) {
	t.Helper()
	jopts.FS, jopts.Dir = jfs, journalDir
	j, err := OpenJournal(jopts)
	if err != nil {
		t.Fatal(err)
	}
	logs := make([]*Log, n)
	for i := range logs {
		opts := Options{FS: lfs, Dir: jlogDir(i), Journal: j}
		if mod != nil {
			mod(&opts)
		}
		if logs[i], err = Open(opts); err != nil {
			t.Fatal(err)
		}
	}
	return j, logs
}

func closeJournalLogs(j *Journal, logs []*Log) {
	for _, l := range logs {
		_ = l.Close()
		<-l.Done()
	}
	_ = j.Close()
	<-j.Done()
}

// TestJournalAckWithoutSegmentSync: frames acknowledged through the journal
// survive a crash although their segment was never synced (every segment
// sync would fail, and none is tried); the segments lose them in the crash
// and the replay brings them back.
func TestJournalAckWithoutSegmentSync(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	lfs := NewFaultFS(m)
	j, logs := openJournalLogs(t, m, lfs, 2, JournalOptions{}, nil)
	lfs.Inject(Fault{Ops: OpSync | OpSyncFS, Sticky: true})
	want := map[int][]string{}
	for i := range 10 {
		for k, l := range logs {
			s := fmt.Sprintf("log %d frame %d", k, i)
			if _, err := l.Append(ctx, []byte(s)); err != nil {
				t.Fatal(err)
			}
			want[k] = append(want[k], s)
		}
	}
	if lfs.Fired() != 0 {
		t.Fatalf("%d segment syncs tried during appends", lfs.Fired())
	}
	m.Crash(CrashOptions{})
	closeJournalLogs(j, logs)
	for k := range logs {
		size, err := m.Stat(join(jlogDir(k), segmentName(0)))
		if err != nil || size != SegmentHeaderSize {
			t.Fatalf("log %d after the crash: segment size %d (%v), want the bare header: the test proves nothing", k, size, err)
		}
	}
	lfs.Reset()
	j, logs = openJournalLogs(t, m, m, 2, JournalOptions{}, nil)
	defer closeJournalLogs(j, logs)
	for k, l := range logs {
		frames := readAll(t, l, 0)
		if len(frames) != len(want[k]) {
			t.Fatalf("log %d: %d frames after replay, want %d", k, len(frames), len(want[k]))
		}
		for i, f := range frames {
			if string(f.Payload) != want[k][i] {
				t.Fatalf("log %d frame %d: %q, want %q", k, i, f.Payload, want[k][i])
			}
		}
	}
}

// TestJournalMergesCommits: while the journal's syncs are blocked (as many
// as it keeps in flight), the rounds of every other Log queue behind them
// and are synced together by the next one or two journal syncs.
func TestJournalMergesCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, rounds = 16, 5
		m := NewMemFS()
		sfs := NewStallFS(m)
		j, logs := openJournalLogs(t, sfs, m, n, JournalOptions{}, nil)
		defer closeJournalLogs(j, logs)
		t.Cleanup(sfs.Release)
		before := j.Stats().Syncs
		for r := range rounds {
			sfs.Stall()
			var waits []<-chan error
			for _, l := range logs[:journalPipeline] {
				waits = append(waits, appendAsync(l, fmt.Sprint("first ", r)))
				synctest.Wait() // this Log's record has a journal sync of its own, blocked
			}
			for _, l := range logs[journalPipeline:] {
				waits = append(waits, appendAsync(l, fmt.Sprint("rest ", r)))
			}
			synctest.Wait()
			if sfs.Waiting() != journalPipeline {
				t.Fatalf("%d journal syncs blocked, want %d", sfs.Waiting(), journalPipeline)
			}
			sfs.Release()
			for _, ch := range waits {
				if err := <-ch; err != nil {
					t.Fatal(err)
				}
			}
		}
		var commits int64
		for _, l := range logs {
			s := l.Stats()
			commits += s.Commits
			if s.Syncs != 0 {
				t.Fatalf("a Log synced its segment %d times", s.Syncs)
			}
		}
		syncs := j.Stats().Syncs - before
		t.Logf("%d commits, %d journal syncs", commits, syncs)
		if commits != n*rounds || syncs > (journalPipeline+2)*rounds {
			t.Fatalf("%d commits with %d journal syncs, want %d with at most %d",
				commits, syncs, n*rounds, (journalPipeline+2)*rounds)
		}
	})
}

// TestJournalTrimsAndKeepsAcked: with a small journal SegmentSize, Logs
// appending a lot keep the journal at about two segments (checkpoints make
// the Logs sync their segments and drop the journal segments before), and
// a crash after trimming loses nothing acknowledged.
func TestJournalTrimsAndKeepsAcked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		const n, seg = 3, 4096
		m := NewMemFS()
		j, logs := openJournalLogs(t, m, m, n, JournalOptions{SegmentSize: seg}, func(o *Options) { o.SegmentSize = 16 << 10 })
		models := make([]*model, n)
		for i := range models {
			models[i] = newModel()
		}
		payload := make([]byte, 200)
		maxRetained, maxFiles := int64(0), 0
		for r := range 200 {
			var wg sync.WaitGroup
			for i, l := range logs {
				wg.Go(func() {
					s := fmt.Sprintf("%d/%d/%s", i, r, payload)
					pos, err := l.Append(ctx, []byte(s))
					if err != nil {
						t.Error(err)
						return
					}
					models[i].enqueue(pos, s)
					models[i].ack(pos, s)
				})
			}
			wg.Wait()
			synctest.Wait() // a checkpoint the round started has finished
			st := j.Stats()
			maxRetained = max(maxRetained, int64(st.End-st.Start))
			names, err := m.ReadDir(journalDir)
			if err != nil {
				t.Fatal(err)
			}
			maxFiles = max(maxFiles, len(names))
		}
		st := j.Stats()
		t.Logf("journal: %d bytes of records written, at most %d retained in %d files, %d checkpoints",
			st.Bytes, maxRetained, maxFiles, st.Checkpoints)
		if st.Checkpoints < 10 || maxRetained > 2*seg+512 || maxFiles > 3 {
			t.Fatalf("journal not trimmed: %d checkpoints, up to %d bytes in %d files", st.Checkpoints, maxRetained, maxFiles)
		}
		m.Crash(CrashOptions{Torn: true, Seed: 5})
		closeJournalLogs(j, logs)
		j, logs = openJournalLogs(t, m, m, n, JournalOptions{SegmentSize: seg}, nil)
		defer closeJournalLogs(j, logs)
		for i, l := range logs {
			models[i].check(t, l, fmt.Sprint("log ", i))
		}
	})
}

// TestJournalFailedSyncFailsLogs: failed journal syncs fail every Log whose
// round they covered, with the IO error; the journal starts no sync after
// that, and the other Logs fail at their next commit.
func TestJournalFailedSyncFailsLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 4
		m := NewMemFS()
		jfs := NewFaultFS(m)
		sfs := NewStallFS(jfs)
		j, logs := openJournalLogs(t, sfs, m, n, JournalOptions{}, nil)
		defer closeJournalLogs(j, logs)
		t.Cleanup(sfs.Release)
		if _, err := logs[0].Append(context.Background(), []byte("acknowledged")); err != nil {
			t.Fatal(err)
		}
		sfs.Stall()
		var waits []<-chan error
		for _, l := range logs[1:] {
			waits = append(waits, appendAsync(l, "lost"))
			synctest.Wait()
		}
		jfs.Inject(Fault{Ops: OpSync, Sticky: true, Err: syscall.EIO})
		sfs.Release()
		for i, ch := range waits {
			if err := <-ch; !errors.Is(err, syscall.EIO) {
				t.Fatalf("log %d: append = %v, want EIO", i+1, err)
			}
			if err := logs[i+1].Err(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("log %d: Err = %v", i+1, err)
			}
		}
		if !errors.Is(j.Err(), syscall.EIO) {
			t.Fatalf("journal Err = %v", j.Err())
		}
		syncs := j.Stats().Syncs
		if _, err := logs[0].Append(context.Background(), []byte("after")); !errors.Is(err, syscall.EIO) {
			t.Fatalf("log 0 after the failed journal sync: %v", err)
		}
		if j.Stats().Syncs != syncs || jfs.Fired() > n-1 {
			t.Fatalf("journal synced again after a failed sync (%d -> %d, %d faults)", syncs, j.Stats().Syncs, jfs.Fired())
		}
	})
}

// TestJournalStallFailsLogsAtDeadline: with the journal's sync blocked, every
// Log waiting for it fails with ErrStorageStalled exactly at SyncTimeout;
// the Logs and the journal close at once; the writers exit once the sync
// returns.
func TestJournalStallFailsLogsAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3
		m := NewMemFS()
		sfs := NewStallFS(m)
		j, logs := openJournalLogs(t, sfs, m, n, JournalOptions{SyncTimeout: stallTimeout},
			func(o *Options) { o.SyncTimeout = stallTimeout })
		sfs.Stall()
		start := time.Now()
		var waits []<-chan error
		for _, l := range logs {
			waits = append(waits, appendAsync(l, "stalled"))
		}
		for i, ch := range waits {
			if err := <-ch; !errors.Is(err, ErrStorageStalled) {
				t.Fatalf("log %d: append = %v, want ErrStorageStalled", i, err)
			}
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("appends failed after %v, want exactly %v", d, stallTimeout)
		}
		for _, l := range logs {
			if err := l.Close(); !errors.Is(err, ErrStorageStalled) {
				t.Fatalf("Close = %v", err)
			}
			<-l.Done()
		}
		if err := j.Close(); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("journal Close = %v", err)
		}
		if d := time.Since(start); d != stallTimeout {
			t.Fatalf("Close took until %v", d)
		}
		select {
		case <-j.Done():
			t.Fatal("journal writer exited while its sync is blocked")
		default:
		}
		sfs.Release()
		<-j.Done()
	})
}

// TestJournalCheckpointDoesNotHoldAppends: a checkpoint's sync of a Log's
// segment runs beside the Log's writer: while it is blocked, the Log's
// appends go on and are acknowledged through the journal; the checkpoint
// completes (and the journal trims) once the sync returns, and the data
// survives a crash.
func TestJournalCheckpointDoesNotHoldAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const seg = 4096
		m := NewMemFS()
		lfs := NewStallFS(m) // the Logs' segments; the journal syncs m directly
		t.Cleanup(lfs.Release)
		j, logs := openJournalLogs(t, m, lfs, 1, JournalOptions{SegmentSize: seg}, nil)
		l := logs[0]
		model := newModel()
		appendOne := func(s string) {
			t.Helper()
			pos, err := l.Append(context.Background(), []byte(s))
			if err != nil {
				t.Fatal(err)
			}
			model.enqueue(pos, s)
			model.ack(pos, s)
		}
		lfs.Stall()
		payload := strings.Repeat("x", 500)
		for i := 0; lfs.Waiting() == 0; i++ {
			if i == 4*seg/len(payload) {
				t.Fatal("no checkpoint started")
			}
			appendOne(fmt.Sprint(i, payload))
			synctest.Wait() // a checkpoint the append started is blocked in its segment sync
		}
		before := j.Stats().Checkpoints
		for i := range 20 {
			appendOne(fmt.Sprint("during ", i, payload))
		}
		if lfs.Waiting() != 1 || j.Stats().Checkpoints != before {
			t.Fatalf("%d syncs blocked, %d checkpoints done (%d before): the checkpoint should still wait", lfs.Waiting(), j.Stats().Checkpoints, before)
		}
		lfs.Release()
		synctest.Wait()
		if j.Stats().Checkpoints <= before {
			t.Fatal("the checkpoint did not complete once its sync returned")
		}
		m.Crash(CrashOptions{})
		closeJournalLogs(j, logs)
		j, logs = openJournalLogs(t, m, m, 1, JournalOptions{SegmentSize: seg}, nil)
		defer closeJournalLogs(j, logs)
		model.check(t, logs[0], "log")
	})
}

// TestJournalOptions: a Journal goes only with SyncAlways, not with a
// SyncGroup, and one id is opened once at a time.
func TestJournalOptions(t *testing.T) {
	m := NewMemFS()
	j, err := OpenJournal(JournalOptions{FS: m, Dir: journalDir})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, opts := range []Options{
		{FS: m, Dir: "/a", Journal: j, Durability: SyncNever},
		{FS: m, Dir: "/a", Journal: j, Durability: SyncInterval},
		{FS: m, Dir: "/a", Journal: j, SyncGroup: NewSyncGroup()},
	} {
		if _, err := Open(opts); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("Open(%+v) = %v, want ErrInvalidOptions", opts, err)
		}
	}
	l, err := Open(Options{FS: m, Dir: "/a", Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{FS: m, Dir: "/a/", Journal: j}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("second Open of one journal id = %v", err)
	}
	if err := j.Forget(context.Background(), "/a"); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Forget of an open Log = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(Options{FS: m, Dir: "/a", Journal: j})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(JournalOptions{FS: m}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("OpenJournal without Dir = %v", err)
	}
}

// TestJournalForget: a Log deleted and forgotten does not come back from
// the journal into a new Log created in its directory.
func TestJournalForget(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	j, logs := openJournalLogs(t, m, m, 1, JournalOptions{}, nil)
	for range 5 {
		if _, err := logs[0].Append(ctx, []byte("old incarnation")); err != nil {
			t.Fatal(err)
		}
	}
	m.Crash(CrashOptions{})
	closeJournalLogs(j, logs)
	j, err := OpenJournal(JournalOptions{FS: m, Dir: journalDir})
	if err != nil {
		t.Fatal(err)
	}
	// The Log is deleted for good, and forgotten.
	if err := m.Remove(join(jlogDir(0), segmentName(0))); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir(jlogDir(0)); err != nil {
		t.Fatal(err)
	}
	if err := j.Forget(ctx, jlogDir(0)); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	// Reopened, the journal holds nothing for the id: it does not keep the
	// journal from trimming.
	if j, err = OpenJournal(JournalOptions{FS: m, Dir: journalDir}); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	left := len(j.mu.index[jlogDir(0)])
	j.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d records of a forgotten Log indexed after a restart", left)
	}
	_ = j.Close()
	// A new Log in the same directory, a crash before it wrote anything,
	// a replay: the old records must not land in its new segment.
	j, logs = openJournalLogs(t, m, m, 1, JournalOptions{}, nil)
	m.Crash(CrashOptions{})
	closeJournalLogs(j, logs)
	j, logs = openJournalLogs(t, m, m, 1, JournalOptions{}, nil)
	defer closeJournalLogs(j, logs)
	if frames := readAll(t, logs[0], 0); len(frames) != 0 {
		t.Fatalf("new Log holds %d frames of the forgotten one", len(frames))
	}
}
