package replication

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

// countHandler is a slog.Handler that counts the records whose message
// holds a substring.
type countHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func (h *countHandler) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.msgs {
		if strings.Contains(m, sub) {
			n += c
		}
	}
	return n
}

// Under SyncNever, after every node crashed, a follower whose high
// watermark survived (it was stopped cleanly) lies above the log end of
// the new leader, which lost its unsynced records. Told to truncate below
// its high watermark, the follower must do so (lowering its high
// watermark) and rejoin: refusing left it out of the ISR for good, and
// the leader re-sent the truncation in a hot loop.
func TestSyncNeverFollowerTruncatesBelowHighWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &countHandler{msgs: map[string]int{}}
		c := newTCluster(t, 3, func(_ uint64, cfg *Config) {
			cfg.Durability = wal.SyncNever
			cfg.Logger = slog.New(h)
		})
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		g := uint64(0)
		for _, id := range c.ids {
			if id != l && id != f {
				g = id
			}
		}
		appendN(t, ctx, c, l, "a", 5)
		checkValues(t, values(c), names("a", 5)) // every high watermark at 5
		// f stops cleanly: its records and high watermark are durable.
		// Once out of the ISR it cannot be elected when it comes back.
		c.stop(f)
		c.waitFor("f out of the ISR", 60*time.Second, func() bool {
			p, ok := c.nodes[l].meta.State().Partition("t", 0)
			return ok && !slices.Contains(p.ISR, f)
		})
		// The others crash and lose every unsynced record (SyncNever).
		for _, id := range []uint64{l, g} {
			c.fs[id].(*wal.MemFS).Crash(wal.CrashOptions{})
			c.stopCrashed(id)
		}
		c.start(l)
		c.start(g)
		c.waitFor("a leader with a shorter log", 60*time.Second, func() bool {
			p, ok := c.nodes[l].meta.State().Partition("t", 0)
			if !ok || p.Leader == 0 || c.nodes[p.Leader] == nil {
				return false
			}
			_, end, ok := c.logBytes(p.Leader, "t", 0)
			return ok && end < 5
		})
		// The scenario: f comes back with its high watermark above the
		// leader's log end.
		fl, err := log.Open(log.Options{WAL: wal.Options{FS: c.fs[f], Dir: replicaDirIn(t, c.fs[f], "/data"),
			Durability: wal.SyncNever}})
		if err != nil {
			t.Fatal(err)
		}
		if hw := fl.HighWatermark(); hw != 5 {
			t.Fatalf("stopped follower's high watermark %d, want 5", hw)
		}
		if err := fl.Close(); err != nil {
			t.Fatal(err)
		}
		c.start(f)
		// f truncates below its high watermark to the leader's end.
		if recs := c.converged("t", 0); len(recs) != 0 {
			t.Fatalf("converged on %d records; the leader lost all 5", len(recs))
		}
		appendN(t, ctx, c, c.leader("t", 0), "b", 3)
		recs := values(c) // converged: f truncated and caught up
		for _, v := range recs {
			if !strings.HasPrefix(v, "b/") {
				t.Errorf("record %q survived: the leader lost it", v)
			}
		}
		checkValues(t, recs, names("b", 3))
		if n := h.count("cannot"); n != 0 {
			t.Errorf("%d \"cannot\" messages logged", n)
		}
	})
}

// Under SyncAlways a truncation below the follower's high watermark would
// remove an acknowledged record: the follower refuses it, and fails (once,
// logged once) instead of answering a mismatch the leader would answer
// with the same truncation at once, for ever.
func TestSyncAlwaysFollowerRefusesTruncationBelowHighWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &countHandler{msgs: map[string]int{}}
		c := newTCluster(t, 3, func(_ uint64, cfg *Config) { cfg.Logger = slog.New(h) })
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 5)
		checkValues(t, values(c), names("a", 5)) // every high watermark at 5
		r := replicaOf(t, c, f)
		r.mu.Lock()
		epoch, tid := r.mu.epoch, r.key.topicID
		r.mu.Unlock()
		// The leader of the current epoch asks for a truncation to 2, as if
		// it had lost acknowledged records.
		for range 3 {
			r.onPush(l, &pushItem{topicID: tid, epoch: epoch, gen: 1 << 20, flags: pushTruncate, prevEnd: 2})
		}
		c.waitFor("follower failed", 30*time.Second, func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.mu.failed != nil
		})
		r.mu.Lock()
		failed := r.mu.failed
		r.mu.Unlock()
		if !errors.Is(failed, log.ErrTruncateBelowHighWatermark) {
			t.Fatalf("follower failed with %v", failed)
		}
		if end, hw := r.log.LogEndOffset(), r.log.HighWatermark(); end != 5 || hw != 5 {
			t.Fatalf("refused truncation changed the log: end %d, hw %d", end, hw)
		}
		time.Sleep(10 * time.Second) // fake time: the leader keeps pushing
		if n := h.count("replica storage failed"); n != 1 {
			t.Errorf("failure logged %d times, want once", n)
		}
	})
}

// writeStallFS blocks the writes to its files while stalled (StallFS
// blocks syncs, which SyncNever does not make).
type writeStallFS struct {
	wal.FS
	mu   sync.Mutex
	gate chan struct{} // closed by release; nil while not stalled
}

func (s *writeStallFS) stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *writeStallFS) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *writeStallFS) wait() {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (s *writeStallFS) Create(name string) (wal.File, error) { return s.wrap(s.FS.Create(name)) }
func (s *writeStallFS) OpenReadWrite(name string) (wal.File, error) {
	return s.wrap(s.FS.OpenReadWrite(name))
}

func (s *writeStallFS) wrap(f wal.File, err error) (wal.File, error) {
	if err != nil {
		return nil, err
	}
	return writeStallFile{f, s}, nil
}

type writeStallFile struct {
	wal.File
	fs *writeStallFS
}

func (f writeStallFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.wait()
	return f.File.WriteAt(p, off)
}

// A leader does not shrink the ISR below MinInSyncReplicas: followers
// that lag stay in it, down to that floor, and AcksAll is refused as with
// a short ISR. Shrunk to the leader alone, a crash of the leader (its
// unsynced records lost, under SyncNever) left it the only replica that
// could be elected, and it came back without records the followers still
// held, acknowledged while they were in the ISR (Kafka's KIP-966 case;
// found by chaos seed 968130050197: a split of the leader, then its
// crash).
func TestSyncNeverLeaderCrashAfterFollowersLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalls := map[uint64]*writeStallFS{}
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			cfg.Durability = wal.SyncNever
			cfg.SyncTimeout = 10 * time.Minute // slow followers, not failed ones: their writes block for a minute
			s := &writeStallFS{FS: cfg.FS}
			stalls[id] = s
			cfg.FS = s
		})
		defer func() {
			for _, s := range stalls {
				s.release()
			}
		}()
		l, _ := c.topicT() // MinInSyncReplicas 2
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		appendN(t, ctx, c, l, "a", 5)
		// One follower goes out: the other stays, though it lags too, and
		// the first does not come back while it takes no records.
		asked := recordISRRequests(c, l)
		others := c.othersThan(l)
		for _, id := range others {
			stalls[id].stall()
		}
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Second) // fake time: many ISR requests
		if reqs := asked(); len(reqs) != 1 || len(reqs[0]) != 2 || !slices.Contains(reqs[0], l) {
			t.Errorf("ISR requests %v: want one, of the leader and one follower (MinInSyncReplicas 2)", reqs)
		}
		short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := c.nodes[l].rep.Append(short, "t", 0, rec("y"), AcksAll)
		cancelShort()
		if !errors.Is(err, ErrNotEnoughReplicas) {
			t.Fatalf("AcksAll append with the ISR held at its floor: %v, want ErrNotEnoughReplicas", err)
		}
		// The leader crashes and loses every unsynced record.
		c.fs[l].(*wal.MemFS).Crash(wal.CrashOptions{})
		c.stopCrashed(l)
		for _, id := range others {
			stalls[id].release()
		}
		nl := c.waitNewLeader(l)
		c.start(l)
		appendN(t, ctx, c, nl, "b", 3)
		var got []string
		for _, v := range values(c) { // converged
			if v != "x" && v != "y" { // not acknowledged with AcksAll: kept or not
				got = append(got, v)
			}
		}
		checkValues(t, got, append(names("a", 5), names("b", 3)...))
	})
}

// Under SyncNever a leader that lost its unsynced tail (every node
// crashed) may order a follower to truncate below the follower's log
// start (its retention ran up to a high watermark the leader no longer
// reaches). The follower starts its log over there, empty, instead of
// failing on every start (TruncateBelowHighWatermark refuses to go below
// the log start).
func TestSyncNeverTruncationBelowLogStartStartsOver(t *testing.T) {
	fsys := wal.NewMemFS()
	l, err := log.Open(log.Options{WAL: wal.Options{FS: fsys, Dir: "/p", Durability: wal.SyncNever, SegmentSize: 4 << 10},
		RetentionBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for range 100 {
		if _, _, err := l.AppendLeader(ctx, 1, []log.Record{{Value: make([]byte, 200)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SetHighWatermark(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	start := l.LogStartOffset()
	if start < 10 {
		t.Fatalf("retention moved the log start to %d only", start)
	}
	m := snapManager(fsys)
	m.cfg.Durability = wal.SyncNever
	r := &replica{m: m, log: l, dir: "/p", snapSem: make(chan struct{}, 1)}
	r.mu.producers = map[int64]*producerState{}
	target := start - 5
	if err := r.truncateLog(target); err != nil {
		t.Fatalf("truncation to %d, below the log start %d: %v", target, start, err)
	}
	if s, e, hw := l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark(); s != target || e != target || hw != target {
		t.Fatalf("after the truncation: start %d end %d hw %d, want all %d", s, e, hw, target)
	}
}
