package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const journalDir = "/journal"

func jlogDir(i int) string { return fmt.Sprintf("/data/jlog%d", i) }

// forgetFrom removes from the model every frame at or after p, acknowledged
// or merely enqueued: after a TruncateAfter that returned, none may come
// back.
func (m *model) forgetFrom(p Pos) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for q := range m.acked {
		if q >= p {
			delete(m.acked, q)
		}
	}
	for q := range m.enqueued {
		if q >= p {
			delete(m.enqueued, q)
		}
	}
}

// crashFS is one process's view of a MemFS that crashes: it can crash the
// MemFS at the nth write or truncation of a file, counting from arm (a
// crash in the middle of whatever writes), or when told. After the crash
// every operation through it fails, as the process is gone: without that,
// the goroutines still running would change the rebooted disk (remove a
// file, sync a directory), which no real crash allows. The next process
// takes a new crashFS.
type crashFS struct {
	*MemFS
	left  atomic.Int64 // writes before the crash; <= 0: disarmed
	after atomic.Bool  // the crash comes right after the write that ends left, not before it
	dead  atomic.Bool
	torn  bool
	seed  uint64
}

// arm crashes the FS at the n-th write from now, before it is applied.
func (c *crashFS) arm(n int, torn bool, seed uint64) {
	c.torn, c.seed = torn, seed
	c.left.Store(int64(n))
}

// armAfter crashes the FS right after the n-th write from now: that
// write's bytes are unsynced when the crash comes, so a torn crash may
// keep part of them.
func (c *crashFS) armAfter(n int, torn bool, seed uint64) {
	c.after.Store(true)
	c.arm(n, torn, seed)
}

// tick counts a write about to be applied (before), or just applied.
func (c *crashFS) tick(before bool) {
	if before == c.after.Load() {
		return
	}
	if c.left.Load() > 0 && c.left.Add(-1) == 0 {
		c.crash(CrashOptions{Torn: c.torn, Seed: c.seed})
	}
}

func (c *crashFS) crash(opts CrashOptions) {
	if !c.dead.Swap(true) {
		c.MemFS.Crash(opts)
	}
}

func (c *crashFS) gone(op, name string) error {
	if c.dead.Load() {
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

func (c *crashFS) Create(name string) (File, error) {
	if err := c.gone("create", name); err != nil {
		return nil, err
	}
	return c.wrap(c.MemFS.Create(name))
}

func (c *crashFS) Open(name string) (File, error) {
	if err := c.gone("open", name); err != nil {
		return nil, err
	}
	return c.MemFS.Open(name)
}

func (c *crashFS) OpenReadWrite(name string) (File, error) {
	if err := c.gone("open", name); err != nil {
		return nil, err
	}
	return c.wrap(c.MemFS.OpenReadWrite(name))
}

func (c *crashFS) Remove(name string) error {
	if err := c.gone("remove", name); err != nil {
		return err
	}
	return c.MemFS.Remove(name)
}

func (c *crashFS) Rename(oldname, newname string) error {
	if err := c.gone("rename", oldname); err != nil {
		return err
	}
	return c.MemFS.Rename(oldname, newname)
}

func (c *crashFS) MkdirAll(dir string) error {
	if err := c.gone("mkdir", dir); err != nil {
		return err
	}
	return c.MemFS.MkdirAll(dir)
}

func (c *crashFS) ReadDir(dir string) ([]string, error) {
	if err := c.gone("readdir", dir); err != nil {
		return nil, err
	}
	return c.MemFS.ReadDir(dir)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.gone("syncdir", dir); err != nil {
		return err
	}
	return c.MemFS.SyncDir(dir)
}

func (c *crashFS) Stat(name string) (int64, error) {
	if err := c.gone("stat", name); err != nil {
		return 0, err
	}
	return c.MemFS.Stat(name)
}

func (c *crashFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, c: c}, nil
}

type crashFile struct {
	File
	c *crashFS
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.c.tick(true)
	n, err := f.File.WriteAt(p, off)
	f.c.tick(false)
	return n, err
}

func (f *crashFile) Truncate(size int64) error {
	f.c.tick(true)
	return f.File.Truncate(size)
}

// journalNode is a journal and its Logs, as a node opens them.
type journalNode struct {
	j    *Journal
	logs []*Log
}

func openJournalNode(fsys FS, n int, jseg, lseg int64, logger *slog.Logger) (*journalNode, error) {
	j, err := OpenJournal(JournalOptions{FS: fsys, Dir: journalDir, SegmentSize: jseg, Logger: logger})
	if err != nil {
		return nil, err
	}
	node := &journalNode{j: j}
	for i := range n {
		l, err := Open(Options{FS: fsys, Dir: jlogDir(i), SegmentSize: lseg, Journal: j, Logger: logger, MaxPending: 2048})
		if err != nil {
			node.close()
			return nil, fmt.Errorf("open log %d: %w", i, err)
		}
		node.logs = append(node.logs, l)
	}
	return node, nil
}

// close closes the Logs, then the journal, and ignores their errors (after
// a crash they all fail).
func (n *journalNode) close() {
	for _, l := range n.logs {
		_ = l.Close()
		<-l.Done()
	}
	_ = n.j.Close()
}

// TestJournalCrashLoop: several Logs share a journal; they append
// concurrently, roll, truncate (TruncateAfter) and delete old segments; the
// machine crashes (torn tails or not) in the middle; sometimes it crashes
// again during the next Open's replay. After each reopen every acknowledged
// frame is there, no frame truncated away came back, and there are no
// holes.
func TestJournalCrashLoop(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 8
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var replays, checkpoints atomic.Int64
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { journalCrashRun(t, seed, logger, &replays, &checkpoints) })
	}
	mu.Lock()
	torn := strings.Count(logs.String(), "truncating torn tail")
	mu.Unlock()
	t.Logf("%d crashes during replay, %d checkpoints, %d torn tails", replays.Load(), checkpoints.Load(), torn)
	if replays.Load() == 0 || checkpoints.Load() == 0 || torn == 0 {
		t.Fatalf("the loop did not exercise crashes during replay (%d), checkpoints (%d) and torn tails (%d)",
			replays.Load(), checkpoints.Load(), torn)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func journalCrashRun(t *testing.T, seed uint64, logger *slog.Logger, replays, checkpoints *atomic.Int64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 1234))
	mem := NewMemFS()
	const nlogs = 3
	jseg := int64(2048 + rng.IntN(8192))
	lseg := int64(512 + rng.IntN(4096))
	models := make([]*model, nlogs)
	for i := range models {
		models[i] = newModel()
	}
	for cycle := range 4 {
		what := fmt.Sprintf("seed %d cycle %d", seed, cycle)
		if cycle > 0 && rng.IntN(2) == 0 {
			// Crash in the middle of the replay's writes.
			fsys := &crashFS{MemFS: mem}
			fsys.arm(1+rng.IntN(6), rng.IntN(2) == 0, seed*1000+uint64(cycle))
			if node, err := openJournalNode(fsys, nlogs, jseg, lseg, logger); err == nil {
				node.close()
			}
			if fsys.dead.Load() {
				replays.Add(1)
			}
		}
		fsys := &crashFS{MemFS: mem}
		node, err := openJournalNode(fsys, nlogs, jseg, lseg, logger)
		if err != nil {
			t.Fatalf("%s: open: %v", what, err)
		}
		for i, l := range node.logs {
			models[i].check(t, l, fmt.Sprintf("%s log %d", what, i))
		}
		// Phase 1: every Log appends; then truncations and retention.
		var wg sync.WaitGroup
		for i, l := range node.logs {
			pseed := rng.Uint64()
			wg.Go(func() { appendPhase(ctx, l, models[i], pseed, 2, 20, nil) })
		}
		wg.Wait()
		for i, l := range node.logs {
			if l.Err() != nil {
				t.Fatalf("%s: log %d: %v", what, i, l.Err())
			}
			if rng.IntN(2) == 0 {
				truncateSome(t, ctx, l, models[i], rng)
			}
			if rng.IntN(4) == 0 {
				if _, err := l.DeleteBefore(l.WrittenEnd() / 2); err != nil {
					t.Fatalf("%s: DeleteBefore: %v", what, err)
				}
			}
		}
		// Phase 2: appends on every Log, a truncation on log 0 among them,
		// and a crash after a random number of acknowledgements.
		crashAt := int64(1 + rng.IntN(80))
		var acks atomic.Int64
		crashed := make(chan struct{})
		var once sync.Once
		torn := rng.IntN(3) != 0
		cseed := seed*100 + uint64(cycle)
		if rng.IntN(2) == 0 {
			// Or earlier: right after a write, its bytes unsynced, so that
			// torn tails come whatever the goroutines' timing.
			fsys.armAfter(1+rng.IntN(60), torn, cseed)
		}
		crash := func() {
			once.Do(func() {
				fsys.crash(CrashOptions{Torn: torn, Seed: cseed})
				close(crashed)
			})
		}
		onAck := func() {
			if acks.Add(1) == crashAt {
				crash()
			}
		}
		for i, l := range node.logs {
			pseed, trunc := rng.Uint64(), rng.Uint64()
			wg.Go(func() {
				if i == 0 {
					truncateSome(t, ctx, l, models[i], rand.New(rand.NewPCG(trunc, 0)))
				}
				appendPhase(ctx, l, models[i], pseed, 2, 25, onAck)
			})
		}
		wg.Wait()
		crash()
		checkpoints.Add(node.j.Stats().Checkpoints)
		node.close()
	}
	// A last clean reopen after the final crash.
	node, err := openJournalNode(mem, nlogs, jseg, lseg, logger)
	if err != nil {
		t.Fatalf("seed %d: final open: %v", seed, err)
	}
	for i, l := range node.logs {
		models[i].check(t, l, fmt.Sprintf("seed %d final log %d", seed, i))
	}
	node.close()
}

// truncateSome truncates l at one of its frames (if it has any) and
// updates the model: the acknowledged frames past the cut may go at once;
// the frames past it must not come back once TruncateAfter returned.
func truncateSome(t *testing.T, ctx context.Context, l *Log, md *model, rng *rand.Rand) {
	var positions []Pos
	for f, err := range l.Frames(l.Start()) {
		if err != nil {
			return // the Log failed (a crash): nothing to truncate
		}
		positions = append(positions, f.Pos)
	}
	if len(positions) == 0 {
		return
	}
	cut := positions[rng.IntN(len(positions))]
	md.dropFrom(cut)
	if err := l.TruncateAfter(ctx, cut); err != nil {
		if l.Err() == nil && !errors.Is(err, ErrCrashed) {
			t.Errorf("TruncateAfter(%d): %v", cut, err)
		}
		return
	}
	md.forgetFrom(cut)
}
