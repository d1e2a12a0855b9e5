package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/wal"
)

const topic = "bench"

// run sets up the cluster and runs the load (or the idle measurement),
// writing progress to progress.
func run(ctx context.Context, o options, progress io.Writer) (*result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	acks, _ := parseAcks(o.Acks)
	dur, _ := parseDurability(o.Durability)
	res := &result{Mode: "load", Nodes: o.Nodes, Partitions: o.Partitions, RF: o.RF, RecordSize: o.RecordSize,
		Batch: o.Batch, Producers: o.Producers, Acks: acks.String(), Durability: dur.String(), Journal: o.Journal,
		SyncGroup: o.SyncGroup, Storage: "disk", Forward: o.Forward, Failover: o.Failover, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var group *wal.SyncGroup
	if o.SyncGroup {
		group = wal.NewSyncGroup() // one for every node: they share the disk
	}
	lopts := []replog.LocalOption{replog.WithConfig(func(c *replog.Config) {
		c.Durability = dur
		c.Journal = o.Journal
		c.SyncGroup = group
		c.SessionTimeout = o.SessionTimeout
	})}
	if o.Memory {
		res.Storage = "memory"
	} else {
		dir := o.Dir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "replog-bench-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp) // with -nodedirs: the links, not the nodes' data
			dir = tmp
		}
		if err := linkNodeDirs(dir, o.NodeDirs); err != nil {
			return nil, err
		}
		lopts = append(lopts, replog.WithDir(dir))
	}
	lc, err := replog.NewLocalCluster(o.Nodes, lopts...)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = lc.Node(1).CreateTopic(cctx, topic, replog.TopicConfig{Partitions: int32(o.Partitions), ReplicationFactor: o.RF})
	cancel()
	if err != nil {
		return nil, err
	}
	if o.Idle {
		res.Mode = "idle"
		if err := waitReplicas(ctx, lc, o); err != nil {
			return nil, err
		}
		return res, measureIdle(ctx, o.Duration, res)
	}
	l := newLoad(lc, o, acks, progress)
	if err := l.run(ctx, res); err != nil {
		return nil, err
	}
	res.PeakRSSMB = peakRSSMB()
	if group != nil {
		st := group.Stats()
		res.GroupFlushes, res.GroupSyncs = st.Flushes, st.Syncs
	}
	return res, nil
}

// load is one run of producers.
type load struct {
	lc   *replog.LocalCluster
	o    options
	acks replog.Acks
	// log receives the progress and the first failed appends' errors,
	// from several goroutines: under logMu.
	log   io.Writer
	logMu sync.Mutex

	reserved, acked, failed atomic.Int64
	parts                   []partStats
	start                   time.Time
	doneAt                  atomic.Int64 // unix ns at which count was reached
	// failAt and downAt (unix ns) bound the failover: from the call that
	// takes the leader down to its return.
	failAt, downAt atomic.Int64
}

// maxErrorsShown is how many failed appends a run describes.
const maxErrorsShown = 5

// partStats keeps, in a failover run, the times of one partition's
// successful appends.
type partStats struct {
	mu  sync.Mutex
	oks []int64 // unix ns, in no particular order
}

func newLoad(lc *replog.LocalCluster, o options, acks replog.Acks, log io.Writer) *load {
	return &load{lc: lc, o: o, acks: acks, log: log, parts: make([]partStats, o.Partitions)}
}

// run starts the producers, the progress printer and the failover, and
// waits for the end of the run.
func (l *load) run(ctx context.Context, res *result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if l.o.Count <= 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, l.o.Duration)
		defer c2()
	}
	l.start = time.Now()
	lats := make([][]time.Duration, l.o.Producers)
	var wg sync.WaitGroup
	for i := range l.o.Producers {
		wg.Go(func() { lats[i] = l.produce(ctx, cancel, i) })
	}
	var affected []int32
	var failErr error
	var side sync.WaitGroup
	if l.o.Failover != "" {
		side.Go(func() { affected, failErr = l.failover(ctx) })
	}
	side.Go(func() { l.printProgress(ctx) })
	wg.Wait()
	end := time.Now()
	if at := l.doneAt.Load(); at != 0 {
		end = time.Unix(0, at)
	}
	cancel()
	side.Wait()
	if failErr != nil {
		return failErr
	}
	elapsed := end.Sub(l.start)
	res.Records, res.Errors = l.acked.Load(), l.failed.Load()
	res.Seconds = elapsed.Seconds()
	res.RecordsPerSec = float64(res.Records) / elapsed.Seconds()
	res.MBPerSec = res.RecordsPerSec * float64(l.o.RecordSize) / 1e6
	all := slices.Concat(lats...)
	slices.Sort(all)
	us := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(q*float64(len(all))))]) / 1e3
	}
	res.P50us, res.P90us, res.P99us, res.P999us, res.MaxUs = us(0.5), us(0.9), us(0.99), us(0.999), us(1)
	if fail, down := l.failAt.Load(), l.downAt.Load(); fail != 0 && down != 0 {
		res.FailoverDownMs = float64(down-fail) / 1e6
		for _, p := range affected {
			gap, base := l.parts[p].gaps(fail, down, end.UnixNano())
			res.FailoverGapMs = max(res.FailoverGapMs, float64(gap)/1e6)
			res.BaselineGapMs = max(res.BaselineGapMs, float64(base)/1e6)
		}
	}
	return nil
}

// baselineWindow is how long before the failover the baseline gap is
// measured.
const baselineWindow = time.Second

// gaps returns, from the partition's successful appends, the longest time
// between two of them (or the last one and end) that overlaps the
// failover, from fail to down, and the longest that lies within the
// baselineWindow before fail: the unavailability the failover caused, and
// the longest pause the same load shows without one.
func (ps *partStats) gaps(fail, down, end int64) (gap, base int64) {
	ps.mu.Lock()
	oks := slices.Clone(ps.oks)
	ps.mu.Unlock()
	slices.Sort(oks)
	oks = append(oks, end)
	for i := 1; i < len(oks); i++ {
		a, b := oks[i-1], oks[i]
		if a < down && b > fail {
			gap = max(gap, b-a)
		}
		if a >= fail-int64(baselineWindow) && b <= fail {
			base = max(base, b-a)
		}
	}
	return gap, base
}

// produce is producer i's loop: batches to partition i mod partitions
// until the run ends. It returns the latencies of its successful appends.
func (l *load) produce(ctx context.Context, stop context.CancelFunc, i int) []time.Duration {
	p := int32(i % l.o.Partitions)
	batch := make([]replog.Record, l.o.Batch)
	for j := range batch {
		v := make([]byte, l.o.RecordSize)
		for k := range v {
			v[k] = byte(i + j + k)
		}
		batch[j] = replog.Record{Value: v}
	}
	var lats []time.Duration
	target := l.route(ctx, p, i)
	for ctx.Err() == nil {
		if l.o.Count > 0 && l.reserved.Add(int64(len(batch))) > l.o.Count {
			return lats
		}
		if target == nil {
			target = l.route(ctx, p, i)
			continue
		}
		t0 := time.Now()
		_, err := target.Append(ctx, topic, p, batch, replog.WithAcks(l.acks))
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				if l.failed.Add(1) <= maxErrorsShown {
					l.logf("append to partition %d failed: %v\n", p, err)
				}
				target = l.route(ctx, p, i)
			}
			if l.o.Count > 0 {
				l.reserved.Add(-int64(len(batch)))
			}
			continue
		}
		lats = append(lats, now.Sub(t0))
		if l.o.Failover != "" {
			ps := &l.parts[p]
			ps.mu.Lock()
			ps.oks = append(ps.oks, now.UnixNano())
			ps.mu.Unlock()
		}
		if n := l.acked.Add(int64(len(batch))); l.o.Count > 0 && n >= l.o.Count {
			l.doneAt.CompareAndSwap(0, now.UnixNano())
			stop()
		}
	}
	return lats
}

// route picks the node producer i sends partition p's appends to: its
// leader, or with -forward a running node that does not lead it. nil if
// no node is known yet.
func (l *load) route(ctx context.Context, p int32, i int) *replog.Cluster {
	nodes := l.lc.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.o.SessionTimeout)
	defer cancel()
	ti, err := nodes[i%len(nodes)].Topic(ctx, topic)
	if err != nil {
		return nodes[i%len(nodes)]
	}
	leader := ti.Partitions[p].Leader
	if l.o.Forward {
		others := slices.DeleteFunc(nodes, func(c *replog.Cluster) bool { return c.ID() == leader })
		if len(others) > 0 {
			return others[i%len(others)]
		}
		return nodes[0]
	}
	if leader != 0 && l.lc.Running(leader) {
		return l.lc.Node(leader)
	}
	return nodes[i%len(nodes)]
}

// failover takes the leader of partition 0 down after FailoverAfter, and
// returns the partitions it led.
func (l *load) failover(ctx context.Context) ([]int32, error) {
	after := l.o.FailoverAfter
	if after <= 0 {
		after = l.o.Duration / 3
	}
	select {
	case <-ctx.Done():
		return nil, nil
	case <-time.After(after):
	}
	ti, err := l.lc.Nodes()[0].Topic(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	leader := ti.Partitions[0].Leader
	var led []int32
	for _, p := range ti.Partitions {
		if p.Leader == leader {
			led = append(led, p.Partition)
		}
	}
	l.failAt.Store(time.Now().UnixNano())
	if l.o.Failover == "close" {
		err = l.lc.CloseNode(leader)
	} else {
		err = l.lc.Stop(leader)
	}
	l.downAt.Store(time.Now().UnixNano())
	if err != nil && !errors.Is(err, replog.ErrClosed) {
		return nil, fmt.Errorf("failover: %s node %d: %w", l.o.Failover, leader, err)
	}
	return led, nil
}

// logf writes to the progress writer.
func (l *load) logf(format string, args ...any) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	fmt.Fprintf(l.log, format, args...)
}

// printProgress prints the records acknowledged so far once a second.
func (l *load) printProgress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n := l.acked.Load()
			l.logf("%5.1fs  %10d records  %9d records/s  %d failed appends\n",
				time.Since(l.start).Seconds(), n, n-last, l.failed.Load())
			last = n
		}
	}
}

// idleWarmup is how long an idle run lets the cluster settle after every
// replica exists, before it measures.
const idleWarmup = 2 * time.Second

// waitReplicas waits until every node holds a replica of every partition
// it is assigned (the logs are created after CreateTopic returns), then
// idleWarmup more, so that an idle measurement does not count the set-up.
func waitReplicas(ctx context.Context, lc *replog.LocalCluster, o options) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, c := range lc.Nodes() {
		for {
			ti, err := c.Topic(ctx, topic)
			if err != nil {
				return err
			}
			missing := 0
			for _, p := range ti.Partitions {
				if slices.Contains(p.Replicas, c.ID()) && p.HighWatermark < 0 {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for node %d's %d replicas: %w", c.ID(), missing, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(idleWarmup):
		return nil
	}
}

// measureIdle measures CPU and RSS of the process over d with no traffic.
func measureIdle(ctx context.Context, d time.Duration, res *result) error {
	cpu0, wall0 := cpuTime(), time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	res.Seconds = wall.Seconds()
	res.IdleCPUPercent = 100 * cpu.Seconds() / wall.Seconds()
	res.IdleRSSMB = rssMB()
	res.PeakRSSMB = peakRSSMB()
	return nil
}

// linkNodeDirs points dir/node-i (where the LocalCluster keeps node i's
// data) at the i-th of the comma-separated nodeDirs, created if needed:
// each node on a device of its own, as the nodes of a real cluster are.
// Nothing to do for an empty nodeDirs.
func linkNodeDirs(dir, nodeDirs string) error {
	if nodeDirs == "" {
		return nil
	}
	for i, d := range strings.Split(nodeDirs, ",") {
		abs, err := filepath.Abs(d)
		if err == nil {
			err = os.MkdirAll(abs, 0o755)
		}
		if err == nil {
			err = os.Symlink(abs, filepath.Join(dir, fmt.Sprintf("node-%d", i+1)))
		}
		if err != nil {
			return fmt.Errorf("-nodedirs: %w", err)
		}
	}
	return nil
}
