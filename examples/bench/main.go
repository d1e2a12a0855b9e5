// Command bench is a load generator for replog: it starts a LocalCluster in
// this process (on disk or in memory), creates a topic, runs producers
// against it for a duration or a count, and reports records/s, MB/s,
// append latency percentiles and peak resident memory.
//
//	go run ./examples/bench                              # 3 nodes, 6 partitions, RF 3, AcksAll, 100 B, SyncAlways, on disk
//	go run ./examples/bench -producers 256 -batch 1      # group commit under many single-record appends
//	go run ./examples/bench -producers 1 -batch 1        # latency of one producer
//	go run ./examples/bench -durability never            # no fsync
//	go run ./examples/bench -syncgroup                   # one file-system flush per round for every log
//	go run ./examples/bench -forward                     # every append through a node that does not lead
//	go run ./examples/bench -failover close              # Close a leader mid-run: the gap between appends across it
//	go run ./examples/bench -failover stop               # Stop (crash) a leader mid-run
//	go run ./examples/bench -idle -partitions 1000       # no traffic: CPU and RSS of an idle cluster
//	go run ./examples/bench -disk                        # no cluster: what this disk's synced writes allow
//	go run ./examples/bench -nodedirs /d1/a,/d2/a,/d3/a   # each node on its own device, as in production
//	go run ./examples/bench -json                        # one JSON line instead of text
//	go run ./examples/bench -cpuprofile cpu.out          # with a CPU profile (go tool pprof cpu.out)
//	go run ./examples/bench -trace trace.out             # with an execution trace (go tool trace trace.out)
//
// Progress goes to stderr once a second; the result to stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/replog/replog"
)

// options are the bench's flags.
type options struct {
	Nodes          int
	Partitions     int
	RF             int
	RecordSize     int
	Batch          int
	Producers      int
	Acks           string
	Durability     string
	Journal        bool
	SyncGroup      bool
	Memory         bool
	Dir            string
	NodeDirs       string // comma-separated, one directory per node
	Duration       time.Duration
	Count          int64
	Forward        bool
	Failover       string // "", "close", "stop"
	FailoverAfter  time.Duration
	Idle           bool
	Disk           bool
	SessionTimeout time.Duration
	JSON           bool
	CPUProfile     string
	Trace          string
}

func main() {
	var o options
	flag.IntVar(&o.Nodes, "nodes", 3, "nodes in the cluster")
	flag.IntVar(&o.Partitions, "partitions", 6, "partitions of the topic")
	flag.IntVar(&o.RF, "rf", 3, "replication factor")
	flag.IntVar(&o.RecordSize, "record", 100, "record value size in bytes")
	flag.IntVar(&o.Batch, "batch", 100, "records per Append")
	flag.IntVar(&o.Producers, "producers", 16, "concurrent producers (producer i appends to partition i mod partitions)")
	flag.StringVar(&o.Acks, "acks", "all", "acks: all, leader or none")
	flag.StringVar(&o.Durability, "durability", "always", "durability: always, periodic or never")
	flag.BoolVar(&o.Journal, "journal", false, "share one redo journal per node (Config.Journal; durability always only)")
	flag.BoolVar(&o.SyncGroup, "syncgroup", false, "merge the log syncs of every node into one file-system flush per round (one Config.SyncGroup for the process)")
	flag.BoolVar(&o.Memory, "mem", false, "keep the logs in memory (wal.MemFS, whose sync copies the file to simulate crashes: not a fast mode)")
	flag.StringVar(&o.Dir, "dir", "", "data directory (default: a temporary one, removed at the end)")
	flag.StringVar(&o.NodeDirs, "nodedirs", "", "comma-separated directories, one per node (node i keeps its data in the i-th), to put each node on its own device as in production; replaces -dir")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to produce (or, with -idle, to measure)")
	flag.Int64Var(&o.Count, "count", 0, "stop after this many records (0: run for -duration)")
	flag.BoolVar(&o.Forward, "forward", false, "send every append to a node that does not lead its partition")
	flag.StringVar(&o.Failover, "failover", "", "close or stop: take down the leader of partition 0 mid-run, with or without handover")
	flag.DurationVar(&o.FailoverAfter, "failover-after", 0, "when to take the leader down (default: a third of -duration)")
	flag.BoolVar(&o.Idle, "idle", false, "no traffic: measure CPU and RSS of the idle cluster over -duration")
	flag.BoolVar(&o.Disk, "disk", false, "no cluster: measure the disk under -dir (default: the temporary directory) with the write-and-sync patterns of SyncAlways, over -duration")
	flag.DurationVar(&o.SessionTimeout, "session", 2*time.Second, "session timeout of the nodes")
	flag.BoolVar(&o.JSON, "json", false, "print the result as one JSON line")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	flag.StringVar(&o.Trace, "trace", "", "write an execution trace of the run to this file")
	flag.Parse()
	stopTrace := record(o.Trace, trace.Start, trace.Stop)
	stopProfile := record(o.CPUProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	defer stopTrace()
	defer stopProfile()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if err := runAndPrint(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stopProfile()
		stopTrace()
		os.Exit(1)
	}
}

// record starts writing a profile or trace of the run to the file path
// (nothing if path is empty) and returns what stops it and closes the
// file. It exits on failure.
func record(path string, start func(io.Writer) error, stop func()) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = start(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	return func() {
		stop()
		f.Close()
	}
}

// runAndPrint runs the bench and prints its result to stdout.
func runAndPrint(ctx context.Context, o options) error {
	if o.Disk {
		dir := o.Dir
		if dir == "" {
			dir = os.TempDir()
		}
		return runDisk(ctx, dir, o.Duration, os.Stdout, o.JSON)
	}
	res, err := run(ctx, o, os.Stderr)
	if err != nil {
		return err
	}
	return res.print(os.Stdout, o.JSON)
}

// result is what a run measured.
type result struct {
	Mode          string  `json:"mode"`
	Nodes         int     `json:"nodes"`
	Partitions    int     `json:"partitions"`
	RF            int     `json:"rf"`
	RecordSize    int     `json:"record_bytes"`
	Batch         int     `json:"batch"`
	Producers     int     `json:"producers"`
	Acks          string  `json:"acks"`
	Durability    string  `json:"durability"`
	Journal       bool    `json:"journal"`
	SyncGroup     bool    `json:"sync_group"`
	Storage       string  `json:"storage"`
	Forward       bool    `json:"forward"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Records       int64   `json:"records"`
	Errors        int64   `json:"errors"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	P50us         float64 `json:"p50_us"`
	P90us         float64 `json:"p90_us"`
	P99us         float64 `json:"p99_us"`
	P999us        float64 `json:"p999_us"`
	MaxUs         float64 `json:"max_us"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	// GroupFlushes and GroupSyncs count the sync group's flushes and the
	// log syncs they served, over the whole run (set-up included).
	GroupFlushes int64 `json:"sync_group_flushes,omitempty"`
	GroupSyncs   int64 `json:"sync_group_syncs,omitempty"`
	// Failover runs: how the leader went (close: controlled shutdown;
	// stop: a crash); the longest time between two successful appends on a
	// partition it led that overlaps the failover (from the call that took
	// the leader down to its return, which lasted FailoverDownMs): the
	// unavailability; and, for comparison, the longest such time on the
	// same partitions in the second before the failover, which is what the
	// same load shows without one.
	Failover       string  `json:"failover,omitempty"`
	FailoverGapMs  float64 `json:"failover_gap_ms,omitempty"`
	FailoverDownMs float64 `json:"failover_down_ms,omitempty"`
	BaselineGapMs  float64 `json:"baseline_gap_ms,omitempty"`
	// Idle runs: CPU used over the run, as a share of one core, and RSS.
	IdleCPUPercent float64 `json:"idle_cpu_percent,omitempty"`
	IdleRSSMB      float64 `json:"idle_rss_mb,omitempty"`
}

// print writes the result as text or one JSON line.
func (r *result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	var b strings.Builder
	journal := ""
	switch {
	case r.Journal:
		journal = " with a journal per node"
	case r.SyncGroup:
		journal = " with one sync group"
	}
	fmt.Fprintf(&b, "%s: %d nodes, %d partitions, RF %d, %s storage, %s%s, acks=%s, GOMAXPROCS %d\n",
		r.Mode, r.Nodes, r.Partitions, r.RF, r.Storage, r.Durability, journal, r.Acks, r.GOMAXPROCS)
	if r.Mode == "idle" {
		fmt.Fprintf(&b, "idle for %.1fs: CPU %.2f%% of one core, RSS %.1f MB (peak %.1f MB)\n",
			r.Seconds, r.IdleCPUPercent, r.IdleRSSMB, r.PeakRSSMB)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%d producers, batches of %d records of %d B%s\n", r.Producers, r.Batch, r.RecordSize,
		map[bool]string{true: ", every append forwarded by a non-leader", false: ""}[r.Forward])
	fmt.Fprintf(&b, "%d records in %.2fs: %.0f records/s, %.1f MB/s (%d failed appends)\n",
		r.Records, r.Seconds, r.RecordsPerSec, r.MBPerSec, r.Errors)
	fmt.Fprintf(&b, "append latency: p50 %.0fµs, p90 %.0fµs, p99 %.0fµs, p99.9 %.0fµs, max %.0fµs\n",
		r.P50us, r.P90us, r.P99us, r.P999us, r.MaxUs)
	if r.GroupFlushes > 0 {
		fmt.Fprintf(&b, "sync group: %d flushes, %.0f/s, %.1f log syncs each\n",
			r.GroupFlushes, float64(r.GroupFlushes)/r.Seconds, float64(r.GroupSyncs)/float64(r.GroupFlushes))
	}
	if r.Failover != "" {
		fmt.Fprintf(&b, "failover by %s (took %.1f ms): longest gap between successful appends on the partitions it led: %.1f ms (in the second before: %.1f ms)\n",
			r.Failover, r.FailoverDownMs, r.FailoverGapMs, r.BaselineGapMs)
	}
	fmt.Fprintf(&b, "peak RSS %.1f MB\n", r.PeakRSSMB)
	_, err := io.WriteString(w, b.String())
	return err
}

// check validates the options.
func (o *options) check() error {
	switch {
	case o.Nodes < 1, o.Partitions < 1, o.RF < 1, o.RF > o.Nodes:
		return fmt.Errorf("need nodes >= 1, partitions >= 1, 1 <= rf <= nodes")
	case o.RecordSize < 0, o.Batch < 1, o.Producers < 1:
		return fmt.Errorf("need record >= 0, batch >= 1, producers >= 1")
	case o.Failover != "" && o.Failover != "close" && o.Failover != "stop":
		return fmt.Errorf("-failover is close or stop, not %q", o.Failover)
	case o.Failover != "" && o.Nodes < 2:
		return fmt.Errorf("-failover needs at least 2 nodes")
	case o.Forward && o.Nodes < 2:
		return fmt.Errorf("-forward needs at least 2 nodes")
	case o.Duration <= 0 && o.Count <= 0:
		return fmt.Errorf("need -duration or -count")
	case o.NodeDirs != "" && (o.Memory || o.Dir != ""):
		return fmt.Errorf("-nodedirs excludes -mem and -dir")
	case o.NodeDirs != "" && len(strings.Split(o.NodeDirs, ",")) != o.Nodes:
		return fmt.Errorf("-nodedirs needs one directory per node (%d)", o.Nodes)
	}
	if _, err := parseAcks(o.Acks); err != nil {
		return err
	}
	d, err := parseDurability(o.Durability)
	if err == nil && o.Journal && d != replog.SyncAlways {
		err = fmt.Errorf("-journal needs -durability always")
	}
	if err == nil && o.Journal && o.SyncGroup {
		err = fmt.Errorf("-journal and -syncgroup exclude each other")
	}
	return err
}

func parseAcks(s string) (replog.Acks, error) {
	switch s {
	case "all", "-1":
		return replog.AcksAll, nil
	case "leader", "1":
		return replog.AcksLeader, nil
	case "none", "0":
		return replog.AcksNone, nil
	}
	return 0, fmt.Errorf("-acks is all, leader or none, not %q", s)
}

func parseDurability(s string) (replog.Durability, error) {
	switch s {
	case "always":
		return replog.SyncAlways, nil
	case "periodic":
		return replog.SyncPeriodic, nil
	case "never":
		return replog.SyncNever, nil
	}
	return 0, fmt.Errorf("-durability is always, periodic or never, not %q", s)
}
