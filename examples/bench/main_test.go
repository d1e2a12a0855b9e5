package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func small() options {
	return options{Nodes: 3, Partitions: 2, RF: 3, RecordSize: 10, Batch: 5, Producers: 3, Acks: "all",
		Durability: "always", Memory: true, Count: 300, SessionTimeout: time.Second}
}

// A tiny run in memory, and one on disk with forwarding: every record
// counted, a result printed.
func TestTinyRuns(t *testing.T) {
	disk := small()
	disk.Memory, disk.Dir, disk.Forward, disk.Durability = false, t.TempDir(), true, "never"
	for _, o := range []options{small(), disk} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var progress bytes.Buffer
		res, err := run(ctx, o, &progress)
		cancel()
		if err != nil {
			t.Fatalf("run(%+v): %v", o, err)
		}
		if res.Records != o.Count || res.Errors != 0 || res.P50us <= 0 || res.P50us > res.MaxUs {
			t.Fatalf("result %+v: want %d records, no errors, sane latencies", res, o.Count)
		}
		var text, js bytes.Buffer
		if err := res.print(&text, false); err != nil || !strings.Contains(text.String(), "records/s") {
			t.Fatalf("text result %q, %v", text.String(), err)
		}
		if err := res.print(&js, true); err != nil {
			t.Fatal(err)
		}
		var back result
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Records != o.Count || strings.Count(js.String(), "\n") != 1 {
			t.Fatalf("JSON result %q: %v", js.String(), err)
		}
	}
}

// -nodedirs puts each node's data in its own directory, which outlives
// the run.
func TestNodeDirs(t *testing.T) {
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")}
	o := small()
	o.Memory, o.NodeDirs = false, strings.Join(dirs, ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := run(ctx, o, &bytes.Buffer{})
	if err != nil || res.Records != o.Count || res.Storage != "disk" {
		t.Fatalf("run: %+v, %v", res, err)
	}
	for _, d := range dirs {
		parts, err := os.ReadDir(filepath.Join(d, "partitions"))
		if err != nil || len(parts) != o.Partitions {
			t.Errorf("%s holds partitions %v (%v), want %d replicas", d, parts, err, o.Partitions)
		}
	}
}

func TestFailoverAndIdleModes(t *testing.T) {
	for _, mode := range []string{"close", "stop"} {
		o := small()
		o.Count, o.Duration, o.Failover, o.FailoverAfter = 0, 3*time.Second, mode, 500*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := run(ctx, o, &bytes.Buffer{})
		cancel()
		if err != nil {
			t.Fatalf("failover by %s: %v", mode, err)
		}
		if res.Records == 0 || res.FailoverGapMs <= 0 {
			t.Fatalf("failover by %s: %+v: want records and a measured gap", mode, res)
		}
	}
	o := small()
	o.Idle, o.Duration, o.Partitions = true, 200*time.Millisecond, 10
	res, err := run(context.Background(), o, &bytes.Buffer{})
	if err != nil || res.Mode != "idle" || res.IdleRSSMB <= 0 {
		t.Fatalf("idle: %+v, %v", res, err)
	}
}

func TestOptionsCheck(t *testing.T) {
	bad := []func(*options){
		func(o *options) { o.RF = 4 },
		func(o *options) { o.Batch = 0 },
		func(o *options) { o.Acks = "some" },
		func(o *options) { o.Durability = "sometimes" },
		func(o *options) { o.Failover = "explode" },
		func(o *options) { o.Count, o.Duration = 0, 0 },
		func(o *options) { o.NodeDirs = "a,b" },
		func(o *options) { o.NodeDirs = "a,b,c" }, // with -mem
		func(o *options) { o.Memory, o.Dir, o.NodeDirs = false, "d", "a,b,c" },
	}
	for i, f := range bad {
		o := small()
		f(&o)
		if err := o.check(); err == nil {
			t.Errorf("case %d: check accepted %+v", i, o)
		}
	}
}

// The failover gap is the longest pause between successful appends that
// overlaps the failover; the baseline the longest in the second before it.
func TestFailoverGaps(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	cases := []struct {
		name            string
		oks             []int64 // ms
		fail, down, end int64   // ms
		gap, base       int64   // ms
	}{
		{"pause spans the failover", []int64{100, 1800, 1990, 2900, 3000}, 2000, 2030, 3100, 910, 190},
		{"warm-up is not counted", []int64{900, 1000, 1990, 2005, 2020}, 2000, 2010, 2030, 15, 990},
		{"no append after the failover", []int64{1500, 1990}, 2000, 2100, 2600, 610, 490},
		{"pause after down not counted", []int64{1990, 2020, 2500}, 2000, 2010, 2600, 30, 0},
	}
	for _, c := range cases {
		var ps partStats
		for _, o := range c.oks {
			ps.oks = append(ps.oks, ms(o))
		}
		gap, base := ps.gaps(ms(c.fail), ms(c.down), ms(c.end))
		if gap != ms(c.gap) || base != ms(c.base) {
			t.Errorf("%s: gap %v, baseline %v; want %v, %v", c.name, time.Duration(gap), time.Duration(base),
				time.Duration(ms(c.gap)), time.Duration(ms(c.base)))
		}
	}
}

// The disk mode writes and syncs every case, prints one line each (or one
// JSON line), and leaves nothing behind in its directory.
func TestDiskMode(t *testing.T) {
	dir := t.TempDir()
	var text, js bytes.Buffer
	if err := runDisk(context.Background(), dir, 0, &text, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text.String(), "syncs/s"); n != len(diskCases) {
		t.Fatalf("text output has %d cases, want %d:\n%s", n, len(diskCases), text.String())
	}
	if err := runDisk(context.Background(), dir, 0, &js, true); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Mode    string       `json:"mode"`
		Results []diskResult `json:"results"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Mode != "disk" || len(back.Results) != len(diskCases) {
		t.Fatalf("JSON output %q: %v", js.String(), err)
	}
	for _, r := range back.Results {
		if r.SyncsPerSec <= 0 || r.MBPerSec <= 0 || r.MsPerSync <= 0 {
			t.Errorf("case %+v: nothing synced", r)
		}
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Fatalf("left in %s: %v, %v", dir, left, err)
	}
}
