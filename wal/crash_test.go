package wal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// model is what a test knows about a log: the frames that must be there
// (acknowledged) and every payload ever enqueued at a position (what may be
// there).
type model struct {
	mu       sync.Mutex
	acked    map[Pos]string
	enqueued map[Pos][]string
}

func newModel() *model {
	return &model{acked: map[Pos]string{}, enqueued: map[Pos][]string{}}
}

func (m *model) enqueue(p Pos, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enqueued[p] = append(m.enqueued[p], s)
}

func (m *model) ack(p Pos, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acked[p] = s
}

// dropFrom forgets acknowledgements at or after p (a truncation).
func (m *model) dropFrom(p Pos) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for q := range m.acked {
		if q >= p {
			delete(m.acked, q)
		}
	}
}

// check verifies a recovered log against the model and makes what was
// recovered the new truth.
func (m *model) check(t *testing.T, l *Log, what string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	frames := readAll(t, l, l.Start())
	got := map[Pos]string{}
	next := l.Start()
	for _, f := range frames {
		if f.Pos != next {
			t.Fatalf("%s: hole at %d (next frame at %d)", what, next, f.Pos)
		}
		next = f.Next
		s := string(f.Payload)
		ok := false
		for _, e := range m.enqueued[f.Pos] {
			ok = ok || e == s
		}
		if !ok {
			t.Fatalf("%s: frame at %d holds %q, never enqueued there", what, f.Pos, s)
		}
		got[f.Pos] = s
	}
	if next != l.WrittenEnd() {
		t.Fatalf("%s: frames end at %d, log at %d", what, next, l.WrittenEnd())
	}
	for p, s := range m.acked {
		if p < l.Start() {
			continue
		}
		if got[p] != s {
			t.Fatalf("%s: acknowledged frame at %d (%q) lost; have %q (log %d..%d)",
				what, p, s, got[p], l.Start(), l.WrittenEnd())
		}
	}
	m.acked = got
	m.enqueued = map[Pos][]string{}
	for p, s := range got {
		m.enqueued[p] = []string{s}
	}
}

// TestCrashLoop appends from several goroutines (with truncations and
// retention between phases), crashes the MemFS at a random moment, possibly
// with torn writes, reopens and checks: every acknowledged frame is there,
// no holes, nothing that was not enqueued at its position.
func TestCrashLoop(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashRun(t, seed, logger) })
	}
	// The loop is only worth something if crashes did tear tails.
	if n := strings.Count(logs.String(), "truncating torn tail"); n == 0 {
		t.Fatalf("no recovery truncated a torn tail in %d runs", seeds)
	} else {
		t.Logf("%d torn tails truncated", n)
	}
}

func crashRun(t *testing.T, seed uint64, logger *slog.Logger) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	fsys := NewMemFS()
	durability := SyncAlways
	if rng.IntN(3) == 0 {
		durability = SyncNever
	}
	hook := &syncHookFS{FS: fsys}
	opts := Options{FS: hook, Dir: testDir, SegmentSize: int64(256 + rng.IntN(4096)),
		Durability: durability, MaxPending: 64 + rng.IntN(4096), Logger: logger}
	md := newModel()
	for cycle := range 4 {
		l, err := Open(opts)
		if err != nil {
			t.Fatalf("seed %d cycle %d: Open: %v", seed, cycle, err)
		}
		md.check(t, l, fmt.Sprintf("seed %d cycle %d", seed, cycle))
		// Phase 1: appends; then maybe truncate and delete.
		appendPhase(ctx, l, md, rng.Uint64(), 4, 20, nil)
		if l.Err() != nil {
			t.Fatalf("seed %d: %v", seed, l.Err())
		}
		if rng.IntN(2) == 0 {
			frames := readAll(t, l, l.Start())
			if len(frames) > 0 {
				cut := frames[rng.IntN(len(frames))].Pos
				if err := l.TruncateAfter(ctx, cut); err != nil {
					t.Fatalf("seed %d: TruncateAfter: %v", seed, err)
				}
				md.dropFrom(cut)
			}
		}
		if rng.IntN(3) == 0 {
			if _, err := l.DeleteBefore(l.WrittenEnd() / 2); err != nil {
				t.Fatalf("seed %d: DeleteBefore: %v", seed, err)
			}
		}
		// Phase 2: appends, and a crash in the middle of them.
		crashAt := 1 + rng.IntN(60)
		crash := make(chan struct{})
		var once sync.Once
		var acks sync.WaitGroup
		// Drawn here: the goroutine below may run while this one still
		// draws (a sync hook can close crash before appendPhase starts).
		torn := rng.IntN(2) == 0
		acks.Go(func() {
			<-crash
			fsys.Crash(CrashOptions{Torn: torn, Seed: seed*100 + uint64(cycle)})
		})
		n := 0
		var nmu sync.Mutex
		trigger := func() bool {
			nmu.Lock()
			defer nmu.Unlock()
			n++
			if n == crashAt {
				once.Do(func() { close(crash) })
			}
			return n >= crashAt
		}
		// Count acknowledgements, or syncs (a crash just before a sync
		// finds unsynced bytes to tear).
		onAck := func() { trigger() }
		if rng.IntN(2) == 0 {
			onAck = nil
			hook.set(func() {
				if trigger() {
					acks.Wait() // the crash happens before this sync
				}
			})
		}
		appendPhase(ctx, l, md, rng.Uint64(), 4, 25, onAck)
		once.Do(func() { close(crash) })
		acks.Wait()
		hook.set(nil)
		_ = l.Close() // fails: its files are gone with the crash
		<-l.Done()
	}
}

// appendPhase runs writers goroutines appending each frames; under SyncNever
// a writer acknowledges its frames with Sync. onAck runs after each
// acknowledgement.
func appendPhase(ctx context.Context, l *Log, md *model, seed uint64, writers, each int, onAck func()) {
	var wg sync.WaitGroup
	for w := range writers {
		wseed := seed + uint64(w)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(wseed, 7))
			var pending []Pos
			var payloads []string
			for i := range each {
				s := fmt.Sprintf("%d/%d/%d:%s", wseed, w, i, bytes.Repeat([]byte{'x'}, rng.IntN(300)))
				pos, end, err := l.Enqueue(ctx, []byte(s))
				if err != nil {
					return
				}
				md.enqueue(pos, s)
				if l.opts.Durability == SyncNever {
					pending, payloads = append(pending, pos), append(payloads, s)
					if rng.IntN(4) != 0 {
						continue
					}
					if l.Sync(ctx) != nil {
						return
					}
					for j := range pending {
						md.ack(pending[j], payloads[j])
					}
					pending, payloads = pending[:0], payloads[:0]
				} else {
					if l.Wait(ctx, end) != nil {
						return
					}
					md.ack(pos, s)
				}
				if onAck != nil {
					onAck()
				}
			}
		})
	}
	wg.Wait()
}

// syncHookFS calls a hook before every file sync.
type syncHookFS struct {
	FS
	mu   sync.Mutex
	hook func()
}

func (h *syncHookFS) set(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = f
}

func (h *syncHookFS) before() {
	h.mu.Lock()
	f := h.hook
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

func (h *syncHookFS) Create(name string) (File, error) { return h.wrap(h.FS.Create(name)) }
func (h *syncHookFS) OpenReadWrite(name string) (File, error) {
	return h.wrap(h.FS.OpenReadWrite(name))
}

func (h *syncHookFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &syncHookFile{File: f, h: h}, nil
}

type syncHookFile struct {
	File
	h *syncHookFS
}

func (f *syncHookFile) Sync() error {
	f.h.before()
	return f.File.Sync()
}
