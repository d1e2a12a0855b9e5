package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/internal/history"
	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

const (
	topic = "chaos"
	// opTimeout bounds one client call.
	opTimeout = 3 * time.Second
	// recoverTimeout bounds the final phase's append and each replica's
	// final read, after healing.
	recoverTimeout = 30 * time.Second
	// sessionTimeout and syncTimeout are short so that failovers and
	// stalls happen many times in a run of seconds.
	sessionTimeout = 500 * time.Millisecond
	syncTimeout    = 300 * time.Millisecond
	segmentSize    = 16 << 10
)

// runConfig is one run: everything derives from Seed.
type runConfig struct {
	Seed       int64
	Nodes      int
	Clients    int
	Duration   time.Duration // workload under faults
	Durability replog.Durability
	Journal    bool // Config.Journal: the nodes' logs share a redo journal
	SyncGroup  bool // Config.SyncGroup: each node's logs share one flush per round
	Kinds      []FaultKind
	ExpectLoss bool // SyncNever with CrashAll: losses are expected
}

func (c runConfig) String() string {
	dur := c.Durability.String()
	if c.Journal {
		dur += " with a journal"
	}
	if c.SyncGroup {
		dur += " with a sync group"
	}
	return fmt.Sprintf("seed %d: %d nodes, %d clients, %v, %s, faults %v, expect loss %v",
		c.Seed, c.Nodes, c.Clients, c.Duration, dur, c.Kinds, c.ExpectLoss)
}

// event is one thing the nemesis or the harness did, on the history's
// time line.
type event struct {
	Tick  int64
	At    time.Duration // since the workload started
	Fault int           // index in the schedule, -1 for the final phase
	What  string
	Err   error
}

func (e event) String() string {
	s := fmt.Sprintf("tick %-6d %-10v", e.Tick, e.At.Round(time.Millisecond))
	if e.Fault >= 0 {
		s += fmt.Sprintf(" fault %2d:", e.Fault)
	}
	s += " " + e.What
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// outcome is what a run found.
type outcome struct {
	cfg      runConfig
	schedule Schedule
	events   []event
	hist     history.History
	finals   map[uint64][]history.Entry
	// epochs is each final replica's leader-epoch cache (epoch → first
	// offset), written to the dump: it tells which leader wrote what.
	epochs   map[uint64][]log.EpochEntry
	result   *history.Result
	problems []string // harness-level failures: no recovery, unreadable replicas
	gaps     []string // known gaps of replog met in the run (not failures)
	faults   map[FaultKind]int
	elapsed  time.Duration
}

func (o *outcome) failed() bool {
	return len(o.problems) > 0 || o.result == nil || !o.result.OK()
}

// harness drives one run against a LocalCluster.
type harness struct {
	t     testing.TB
	cfg   runConfig
	lc    *replog.LocalCluster
	rec   *history.Recorder
	start time.Time
	logs  *boundedBuffer

	mu struct {
		sync.Mutex
		mem    map[uint64]*wal.MemFS
		stall  map[uint64]*wal.StallFS
		events []event
		faults map[FaultKind]int
		probs  []string
		gaps   []string
		// corrupted holds the nodes whose segment the nemesis damaged.
		corrupted map[uint64]bool
		up        chan struct{} // closed (and replaced) when a node restarts
	}
}

// upSignal returns a channel closed at the next restart of a node.
func (h *harness) upSignal() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.up
}

// restarted wakes the clients waiting for a running node.
func (h *harness) restarted() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.mu.up)
	h.mu.up = make(chan struct{})
}

func newHarness(t testing.TB, cfg runConfig) *harness {
	h := &harness{t: t, cfg: cfg, rec: history.NewRecorder(), logs: newBoundedBuffer(8 << 20)}
	h.mu.mem = map[uint64]*wal.MemFS{}
	h.mu.stall = map[uint64]*wal.StallFS{}
	h.mu.faults = map[FaultKind]int{}
	h.mu.up = make(chan struct{})
	h.mu.corrupted = map[uint64]bool{}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	lc, err := replog.NewLocalCluster(cfg.Nodes,
		replog.WithSeed(cfg.Seed),
		replog.WithFS(func(id replog.NodeID) wal.FS {
			m := wal.NewMemFS()
			s := wal.NewStallFS(m)
			h.mu.Lock()
			h.mu.mem[id], h.mu.stall[id] = m, s
			h.mu.Unlock()
			return s
		}),
		replog.WithConfig(func(c *replog.Config) {
			c.Durability = cfg.Durability
			c.Journal = cfg.Journal
			if cfg.SyncGroup {
				// One per node start: a crash or a failed flush ends the
				// group of that node only.
				c.SyncGroup = wal.NewSyncGroup()
			}
			c.SessionTimeout = sessionTimeout
			c.SyncTimeout = syncTimeout
			c.SegmentSize = segmentSize
			c.Logger = logger.With("node", c.ID)
		}))
	if err != nil {
		t.Fatalf("%v: NewLocalCluster: %v", cfg, err)
	}
	h.lc = lc
	return h
}

func (h *harness) memFS(id uint64) *wal.MemFS {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.mem[id]
}

func (h *harness) stallFS(id uint64) *wal.StallFS {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.stall[id]
}

// note records an event on the history's time line.
func (h *harness) note(fault int, err error, format string, args ...any) {
	e := event{Tick: h.rec.Tick(), At: time.Since(h.start), Fault: fault, What: fmt.Sprintf(format, args...), Err: err}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.events = append(h.mu.events, e)
}

// knownCorruptionGap is what replog does not do yet with a corrupted
// segment: a replica whose read finds the damage reports it (the read fails
// with wal.ErrCorrupt), takes no more writes and is rebuilt from its peers
// only at its next start; until then reads through it fail. Clear it once
// the rebuild happens in place: runs then fail on it.
const knownCorruptionGap = "gap: a replica whose read finds its wal damaged fails and is rebuilt from " +
	"its peers only at its next start"

// knownOfflineAfterCorruption is replog's answer when every replica of the
// ISR lost its log to corruption: the partition stays offline rather than
// elect a replica that may lack acknowledged records.
const knownOfflineAfterCorruption = "by design: a partition whose in-sync replicas all lost their logs to " +
	"corruption stays offline (no unclean election)"

// isrLostToCorruption reports whether every member of the partition's ISR,
// as a running node's metadata shows it, had its log corrupted by the
// nemesis, and returns that ISR.
func (h *harness) isrLostToCorruption() ([]replog.NodeID, bool) {
	for _, id := range h.nodes() {
		if !h.lc.Running(id) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		ti, err := h.lc.Node(id).Topic(ctx, topic)
		cancel()
		if err != nil || len(ti.Partitions) == 0 {
			continue
		}
		isr := ti.Partitions[0].ISR
		h.mu.Lock()
		lost := len(isr) > 0 && !slices.ContainsFunc(isr, func(m replog.NodeID) bool { return !h.mu.corrupted[uint64(m)] })
		h.mu.Unlock()
		return isr, lost
	}
	return nil, false
}

// failure records a failure of node id in the final phase: a known gap if
// id's segment was corrupted and err reports the corruption, a problem
// otherwise.
func (h *harness) failure(id uint64, format string, args ...any) {
	err, _ := args[len(args)-1].(error)
	h.mu.Lock()
	corrupted := h.mu.corrupted[id]
	h.mu.Unlock()
	if knownCorruptionGap != "" && corrupted && errors.Is(err, wal.ErrCorrupt) {
		msg := fmt.Sprintf(format, args...)
		h.note(-1, nil, "%s: %s", knownCorruptionGap, msg)
		h.mu.Lock()
		h.mu.gaps = append(h.mu.gaps, msg)
		h.mu.Unlock()
		return
	}
	h.problem(format, args...)
}

// problem records a harness-level failure.
func (h *harness) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.note(-1, nil, "PROBLEM: %s", msg)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.probs = append(h.mu.probs, msg)
}

// nodes returns 1..n.
func (h *harness) nodes() []uint64 {
	ids := make([]uint64, h.cfg.Nodes)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	return ids
}

// run performs the whole run: topic, workload under the nemesis, healing,
// final reads, check. It closes the cluster.
func run(t testing.TB, cfg runConfig) *outcome {
	began := time.Now()
	h := newHarness(t, cfg)
	defer func() {
		if err := h.lc.Close(); err != nil {
			t.Errorf("%v: Close: %v", cfg, err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	err := h.lc.Node(1).CreateTopic(ctx, topic, replog.TopicConfig{
		Partitions: 1, ReplicationFactor: min(3, cfg.Nodes), MinInSyncReplicas: min(2, cfg.Nodes)})
	cancel()
	if err != nil {
		t.Fatalf("%v: CreateTopic: %v", cfg, err)
	}
	sched := NewSchedule(cfg.Seed, cfg.Nodes, cfg.Duration, cfg.Kinds, syncTimeout+200*time.Millisecond)

	h.start = time.Now()
	watchdog := time.AfterFunc(cfg.Duration+watchdogSlack, func() { h.hung() })
	defer watchdog.Stop()
	wctx, stop := context.WithTimeout(context.Background(), cfg.Duration)
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Go(func() { h.client(wctx, c) })
	}
	wg.Go(func() { h.nemesis(wctx, sched) })
	wg.Wait()
	stop()

	o := &outcome{cfg: cfg, schedule: sched}
	h.finish(o)
	h.mu.Lock()
	o.events, o.problems, o.faults, o.gaps = h.mu.events, h.mu.probs, h.mu.faults, h.mu.gaps
	h.mu.Unlock()
	o.hist = h.rec.History()
	o.elapsed = time.Since(began)
	if o.finals == nil {
		// No final logs to judge against: the problems say why.
		h.dump(o)
		return o
	}
	res, err := history.Check(o.hist, o.finals, history.Options{ExpectLoss: cfg.ExpectLoss, LinearizabilityTimeout: time.Minute})
	if err != nil {
		t.Fatalf("%v: Check: %v", cfg, err)
	}
	o.result = res
	o.elapsed = time.Since(began)
	if o.failed() {
		h.dump(o)
	}
	return o
}

// watchdogSlack is how long a run may take beyond its workload before it
// is declared hung: more than the final phase's bounded waits (restarts
// of a minute at most each, recoverTimeout for the last append and the
// final reads).
const watchdogSlack = 5 * time.Minute

// hung reports a run that is stuck (a deadlock in replog, or a wait
// without a deadline): it writes the goroutines, the events and the
// history so far to the seed's file and panics, since a stuck goroutine
// cannot be stopped.
func (h *harness) hung() {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	path := filepath.Join(os.TempDir(), fmt.Sprintf("replog-chaos-seed-%d-hung.txt", h.cfg.Seed))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v\nrun hung: still going %v after its workload ended\n", h.cfg, watchdogSlack)
	h.mu.Lock()
	for _, e := range h.mu.events {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	h.mu.Unlock()
	b.WriteString("\ngoroutines:\n")
	b.Write(buf)
	b.WriteString("\nhistory so far:\n")
	for _, op := range h.rec.History() {
		fmt.Fprintf(&b, "  %s\n", op)
	}
	b.WriteString("\nnode logs (tail):\n")
	b.Write(h.logs.Bytes())
	err := os.WriteFile(path, b.Bytes(), 0o644)
	panic(fmt.Sprintf("chaos: %v: the run is hung (a deadlock in replog?); goroutines, events and history in %s (write error: %v)", h.cfg, path, err))
}

// finish heals every fault, restarts every node (one at a time), appends
// a last record and reads every replica's log up to it.
func (h *harness) finish(o *outcome) {
	h.healAll()
	for _, id := range h.nodes() {
		if h.lc.Running(id) {
			// A node whose storage failed (a stall) reports it on Stop:
			// an event, not a failure.
			err := h.lc.Stop(id)
			h.note(-1, err, "final stop of n%d", id)
		}
		err := h.lc.Restart(id)
		h.note(-1, err, "final restart of n%d", id)
		if err != nil {
			h.failure(id, "final restart of n%d failed: %v", id, err)
		}
	}
	last, ok := h.finalAppend()
	if !ok {
		return
	}
	h.waitISR()
	// What a consumer sees through each node, recorded as reads: each
	// must be a prefix of the final log, and waiting for it (MaxWait)
	// brings each replica up to the final append.
	var wg sync.WaitGroup
	for _, id := range h.nodes() {
		wg.Go(func() {
			op := h.rec.InvokeRead(h.cfg.Clients+1+int(id), id, 0)
			got, err := h.readThrough(id, last+1)
			h.note(-1, err, "final read through n%d: %d records", id, len(got))
			if err != nil {
				h.rec.CompleteRead(op, history.Fail, nil, err)
				h.failure(id, "n%d did not serve the log up to offset %d within %v: %v", id, last, recoverTimeout, err)
				return
			}
			h.rec.CompleteRead(op, history.OK, got, nil)
		})
	}
	wg.Wait()
	// The replicas' own logs, read from their file systems once the
	// cluster is closed: not what a node serves (a node whose replica
	// failed to open forwards reads to the leader), but what it holds.
	if err := h.lc.Close(); err != nil {
		h.note(-1, err, "close the cluster")
	}
	o.finals = map[uint64][]history.Entry{}
	for _, id := range h.nodes() {
		held, epochs, found, err := readRawLog(h.memFS(id))
		switch {
		case err != nil:
			h.failure(id, "n%d's replica cannot be read from its files: %v", id, err)
		case found:
			o.finals[id] = held
			if o.epochs == nil {
				o.epochs = map[uint64][]log.EpochEntry{}
			}
			o.epochs[id] = epochs
			h.note(-1, nil, "n%d's replica holds %d records", id, len(held))
		}
	}
}

// waitISR waits until the ISR holds every replica: with nothing appended
// after the final append, which the high watermark passed, every ISR
// member then holds it (a node that has not opened its replica yet would
// otherwise answer the final reads by forwarding them to the leader). It
// polls the metadata every finalRetry up to recoverTimeout: replog offers
// no event for an ISR change.
func (h *harness) waitISR() {
	deadline := time.Now().Add(recoverTimeout)
	var info replog.TopicInfo
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		info, err = h.lc.Node(1).Topic(ctx, topic)
		cancel()
		if err == nil && len(info.Partitions) == 1 {
			p := info.Partitions[0]
			if len(p.ISR) == len(p.Replicas) {
				h.note(-1, nil, "ISR %v holds every replica", p.ISR)
				return
			}
		}
		pause(context.Background(), finalRetry)
	}
	h.problem("the ISR does not hold every replica %v after healing: %+v, %v", recoverTimeout, info.Partitions, err)
}

// readRawLog opens the partition's replica on fsys, if there is one, and
// returns all it holds, up to its log end (committed or not), and its
// leader-epoch cache.
func readRawLog(fsys *wal.MemFS) (entries []history.Entry, epochs []log.EpochEntry, found bool, err error) {
	dirs, err := fsys.ReadDir("/partitions")
	if err != nil {
		return nil, nil, false, nil // no replica on this node
	}
	var dir string
	for _, d := range dirs {
		if strings.HasPrefix(d, topic+"-") && strings.HasSuffix(d, "-0") {
			dir = "/partitions/" + d
		}
	}
	if dir == "" {
		return nil, nil, false, nil
	}
	l, err := log.Open(log.Options{WAL: wal.Options{FS: fsys, Dir: dir}})
	if err != nil {
		return nil, nil, true, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	epochs = l.Epochs()
	for from, end := l.LogStartOffset(), l.LogEndOffset(); from < end; {
		recs, err := l.Read(from, end, 1<<20)
		if err != nil {
			return entries, epochs, true, err
		}
		if len(recs) == 0 {
			return entries, epochs, true, fmt.Errorf("chaos: raw read at %d of %d returned nothing", from, end)
		}
		for _, r := range recs {
			entries = append(entries, history.Entry{Offset: r.Offset, Value: string(r.Value)})
		}
		from = recs[len(recs)-1].Offset + 1
	}
	return entries, epochs, true, nil
}

// healAll ends every fault: the network heals, syncs run, stopped nodes
// restart.
func (h *harness) healAll() {
	h.lc.Network().Heal()
	for _, id := range h.nodes() {
		if s := h.stallFS(id); s != nil {
			s.Release()
		}
	}
	h.note(-1, nil, "healed network and storage")
}

// finalAppend appends one last record with AcksAll, recorded in the
// history; once acknowledged the high watermark covers everything the
// leader held before it. Attempts that fail (the ISR below
// MinInSyncReplicas while restarted replicas catch up, an election under
// way) are retried, each with a new value, every finalRetry until
// recoverTimeout: a bounded poll, as replog offers no event for "the ISR
// is whole again".
func (h *harness) finalAppend() (int64, bool) {
	deadline := time.Now().Add(recoverTimeout)
	var err error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		node := h.nodes()[attempt%h.cfg.Nodes]
		value := fmt.Sprintf("final-%d", attempt)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		id := h.rec.InvokeAppend(h.cfg.Clients, node, value)
		var res replog.AppendResult
		res, err = h.lc.Node(node).Append(ctx, topic, 0, []replog.Record{{Value: []byte(value)}})
		cancel()
		if err == nil {
			h.rec.CompleteAppend(id, history.OK, res.BaseOffset, nil)
			h.note(-1, nil, "final append %q acknowledged at offset %d", value, res.BaseOffset)
			return res.BaseOffset, true
		}
		h.rec.CompleteAppend(id, appendOutcome(err), 0, err)
		pause(context.Background(), finalRetry)
	}
	if isr, lost := h.isrLostToCorruption(); lost {
		// The records only these replicas held are gone with their logs:
		// replog elects no replica outside the ISR (no unclean election),
		// as Kafka by default, so the partition stays offline.
		msg := fmt.Sprintf("no append accepted within %v after healing: the partition's ISR %v holds only replicas whose logs were corrupted and emptied; no unclean election (%v)", recoverTimeout, isr, err)
		h.note(-1, nil, "%s: %s", knownOfflineAfterCorruption, msg)
		h.mu.Lock()
		h.mu.gaps = append(h.mu.gaps, msg)
		h.mu.Unlock()
		return 0, false
	}
	h.problem("no append accepted within %v after healing: %v", recoverTimeout, err)
	return 0, false
}

// finalRetry is the pause between two attempts of the final append.
const finalRetry = 50 * time.Millisecond

// readThrough reads the partition through node id from offset 0 up to
// end, waiting (event-driven, MaxWait) for the high watermark node id knows
// to get there. A node that holds a replica answers from it.
func (h *harness) readThrough(id uint64, end int64) ([]history.Entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	defer cancel()
	var got []history.Entry
	for int64(len(got)) < end {
		res, err := h.lc.Node(id).Read(ctx, topic, 0, int64(len(got)), replog.MaxWait(recoverTimeout))
		if err != nil {
			return got, err
		}
		for _, r := range res.Records {
			got = append(got, history.Entry{Offset: r.Offset, Value: string(r.Value)})
		}
	}
	return got, nil
}

// report describes a failed run; dump writes it, the node logs and the
// whole history to a file and names it.
func (o *outcome) report() string {
	var b strings.Builder
	bugs := ""
	if *bugsFlag {
		bugs = " -chaos.known-bugs"
	}
	fmt.Fprintf(&b, "%v\nreplay: go test ./chaos -run 'TestChaos$' -seed=%d -chaos.duration=%v%s -v\n", o.cfg, o.cfg.Seed, o.cfg.Duration, bugs)
	fmt.Fprintf(&b, "%s\n", o.schedule)
	b.WriteString("events:\n")
	for _, e := range o.events {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	for _, p := range o.problems {
		fmt.Fprintf(&b, "PROBLEM: %s\n", p)
	}
	for _, g := range o.gaps {
		fmt.Fprintf(&b, "known %s: %s\n", knownCorruptionGap, g)
	}
	if o.result != nil {
		fmt.Fprintf(&b, "check: %s\n", o.result)
		shown := 0
		for _, v := range o.result.Violations {
			for _, id := range v.Ops {
				if shown < 40 && id >= 0 && id < len(o.hist) {
					fmt.Fprintf(&b, "  op %s\n", o.hist[id])
					shown++
				}
			}
		}
	}
	return b.String()
}

func (h *harness) dump(o *outcome) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("replog-chaos-seed-%d.txt", o.cfg.Seed))
	var b bytes.Buffer
	b.WriteString(o.report())
	b.WriteString("\nfinal logs:\n")
	ids := make([]uint64, 0, len(o.finals))
	for id := range o.finals {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		fmt.Fprintf(&b, "  n%d: %v\n", id, o.finals[id])
	}
	b.WriteString("\nfinal leader-epoch caches (epoch first-offset):\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  n%d: %v\n", id, o.epochs[id])
	}
	b.WriteString("\nhistory:\n")
	for _, op := range o.hist {
		fmt.Fprintf(&b, "  %s\n", op)
	}
	b.WriteString("\nnode logs (tail):\n")
	b.Write(h.logs.Bytes())
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		h.t.Logf("writing %s: %v", path, err)
		return
	}
	h.t.Logf("seed %d: full history, schedule and node logs in %s", o.cfg.Seed, path)
}

// appendOutcome classifies an Append error: Fail only for errors returned
// before anything is written, Info for all others.
func appendOutcome(err error) history.Outcome {
	switch {
	case errors.Is(err, replog.ErrInvalidArgument), errors.Is(err, replog.ErrUnknownTopic),
		errors.Is(err, replog.ErrUnknownPartition), errors.Is(err, replog.ErrRecordTooLarge):
		return history.Fail
	}
	return history.Info
}

// boundedBuffer keeps the last max bytes written to it (the tail of the
// node logs), safe for concurrent use.
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

var _ io.Writer = (*boundedBuffer)(nil)

func newBoundedBuffer(max int) *boundedBuffer { return &boundedBuffer{max: max} }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over+b.max/4:]...)
	}
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
