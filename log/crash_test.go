package log

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/replog/replog/wal"
)

// model is what a crash must preserve: the acknowledged records, in
// offset order from start.
type model struct {
	lossy  bool // a crash may lose acknowledged records (not synced)
	losses int  // crashes that did
	start  int64
	vals   []string // vals[i] is offset start+i
	hw     int64
	epoch  int32
}

func (m *model) end() int64 { return m.start + int64(len(m.vals)) }

// TestCrashLoop runs random operations on the crash-simulating FS,
// crashes (sometimes with a torn tail), reopens, and checks: every
// acknowledged record is there unchanged, offsets are dense, the high
// watermark is within [start, end] and not above what was set, and the
// epoch cache agrees with the batches.
func TestCrashLoop(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { crashLoop(t, seed, wal.SyncAlways) })
	}
	// Without syncs a crash loses acknowledged records: the recovered log
	// must be a prefix of what was written, dense and consistent.
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("SyncNever-%d", seed), func(t *testing.T) { crashLoop(t, seed, wal.SyncNever) })
	}
}

func crashLoop(t *testing.T, seed uint64, durability wal.Durability) {
	const rounds = 40
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	fsys := wal.NewMemFS()
	ffs := wal.NewFaultFS(fsys)
	opts := testOptions(ffs, newClock())
	opts.CheckpointInterval = 3000 // background checkpoints race the crashes
	opts.RetentionBytes = 16 << 10
	opts.WAL.Durability = durability
	ctx := context.Background()
	m := &model{epoch: 1, lossy: durability != wal.SyncAlways}
	for round := range rounds {
		l := mustOpen(t, opts)
		checkAgainstModel(t, l, m, round)
		for range 5 + rng.IntN(40) {
			switch op := rng.IntN(20); {
			case op < 13:
				n := 1 + rng.IntN(4)
				vs := make([]string, n)
				for i := range vs {
					vs[i] = fmt.Sprintf("r%d-%d", round, rng.IntN(1e6)) + string(make([]byte, rng.IntN(300)))
				}
				base, _, err := l.AppendLeader(ctx, m.epoch, vals(vs...))
				if err != nil || base != m.end() {
					t.Fatalf("round %d: append at %d: base %d, %v", round, m.end(), base, err)
				}
				m.vals = append(m.vals, vs...)
			case op < 16:
				hw := m.hw + rng.Int64N(m.end()-m.hw+1)
				if err := l.SetHighWatermark(hw); err != nil {
					t.Fatal(err)
				}
				m.hw = hw
			case op < 17:
				m.epoch += int32(1 + rng.IntN(2))
				if rng.IntN(2) == 0 {
					if err := l.BeginEpoch(m.epoch); err != nil {
						t.Fatal(err)
					}
				}
			case op < 18:
				to := m.hw + rng.Int64N(m.end()-m.hw+1)
				// The high watermark may sit inside a batch here (real ones
				// never do): then the refusal is right.
				if err := l.TruncateTo(ctx, to); err != nil && !errors.Is(err, ErrTruncateBelowHighWatermark) {
					t.Fatalf("round %d: TruncateTo(%d): %v", round, to, err)
				}
				m.vals = m.vals[:l.LogEndOffset()-m.start]
			case op < 19:
				start, err := l.EnforceRetention(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				m.vals = m.vals[start-m.start:]
				m.start = start
			default:
				checkInvariants(t, l)
			}
		}
		if rng.IntN(4) == 0 {
			if err := l.Close(); err != nil {
				t.Fatalf("round %d: Close: %v", round, err)
			}
			continue
		}
		crash(l, ffs, fsys, wal.CrashOptions{Torn: rng.IntN(2) == 0, Seed: rng.Uint64()})
		m.hw = min(m.hw, m.end())
	}
	l := mustOpen(t, opts)
	checkAgainstModel(t, l, m, rounds)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if m.lossy && m.losses == 0 {
		t.Fatal("no crash lost unsynced records: the lossy path went untested")
	}
}

func checkAgainstModel(t *testing.T, l *Log, m *model, round int) {
	t.Helper()
	checkInvariants(t, l)
	if m.lossy && l.LogStartOffset() == m.start && l.LogEndOffset() < m.end() {
		m.vals = m.vals[:l.LogEndOffset()-m.start] // lost, not synced
		m.losses++
	}
	if l.LogStartOffset() != m.start || l.LogEndOffset() != m.end() {
		t.Fatalf("round %d: log holds [%d, %d), acknowledged [%d, %d)",
			round, l.LogStartOffset(), l.LogEndOffset(), m.start, m.end())
	}
	if hw := l.HighWatermark(); hw > m.hw && hw > m.start {
		t.Fatalf("round %d: high watermark %d above the one set, %d", round, hw, m.hw)
	}
	// Read everything (below the end, ignoring the high watermark).
	for i, r := range readAll(t, l, m.start, m.end()) {
		if string(r.Value) != m.vals[i] {
			t.Fatalf("round %d: offset %d holds %.8q, acknowledged %.8q", round, r.Offset, r.Value, m.vals[i])
		}
	}
	// The recovered high watermark is a floor the log may keep.
	m.hw = l.HighWatermark()
	m.epoch = max(m.epoch, l.LatestEpoch())
}

// TestCrashWithConcurrentAppends: appenders race a crash; every append
// that returned success is in the recovered log, offsets dense.
func TestCrashWithConcurrentAppends(t *testing.T) {
	for seed := range uint64(5) {
		fsys := wal.NewMemFS()
		ffs := wal.NewFaultFS(fsys)
		opts := testOptions(ffs, newClock())
		opts.CheckpointInterval = 2000
		l := mustOpen(t, opts)
		var mu sync.Mutex
		acked := map[int64]string{}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					v := fmt.Sprintf("w%d-%d", w, i)
					base, _, err := l.AppendLeader(context.Background(), 1, vals(v))
					if err != nil {
						return // the crash
					}
					mu.Lock()
					acked[base] = v
					mu.Unlock()
				}
			})
		}
		// A bound, not a synchronisation: a bug fails the test instead of
		// hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 100 {
				break
			}
			if err := l.WaitEnd(ctx, int64(n)); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		crash(l, ffs, fsys, wal.CrashOptions{Torn: true, Seed: seed})
		close(stop)
		wg.Wait()
		l = mustOpen(t, opts)
		checkInvariants(t, l)
		got := readAll(t, l, 0, l.LogEndOffset())
		mu.Lock()
		for off, v := range acked {
			if off >= int64(len(got)) || string(got[off].Value) != v {
				t.Fatalf("seed %d: acknowledged %q at %d lost (log end %d)", seed, v, off, len(got))
			}
		}
		mu.Unlock()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
