package log

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/replog/replog/internal/scripttest"
	"github.com/replog/replog/wal"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt scripts")

// TestScripts runs the scenario scripts in testdata/. A script is a
// sequence of blocks, like cockroachdb/datadriven's:
//
//	command arg ...
//	----
//	expected output
//	<blank line>
//
// Lines starting with # are comments. Each script runs against fresh logs
// on one MemFS, named by the commands (see scriptEnv.run).
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	env := &scriptEnv{t: t, disks: map[string]*scriptDisk{}, logs: map[string]*Log{}, clock: newClock()}
	defer env.closeAll()
	scripttest.Run(t, file, *rewrite, func(cmd string) string { return env.run(strings.Fields(cmd)) })
}

type scriptEnv struct {
	t     *testing.T
	disks map[string]*scriptDisk // each log has its own, so a crash hits one
	logs  map[string]*Log
	clock *fakeClock
}

type scriptDisk struct {
	mem *wal.MemFS
	ffs *wal.FaultFS
}

func (e *scriptEnv) open(name string) *Log {
	d, ok := e.disks[name]
	if !ok {
		d = &scriptDisk{mem: wal.NewMemFS()}
		d.ffs = wal.NewFaultFS(d.mem)
		e.disks[name] = d
	}
	l, err := Open(Options{WAL: wal.Options{FS: d.ffs, Dir: "/" + name, SegmentSize: 1024}, IndexInterval: 64, Clock: e.clock.Now})
	if err != nil {
		e.t.Fatalf("open %s: %v", name, err)
	}
	e.logs[name] = l
	return l
}

func (e *scriptEnv) closeAll() {
	for _, l := range e.logs {
		_ = l.Close()
	}
}

func (e *scriptEnv) log(name string) *Log {
	l, ok := e.logs[name]
	if !ok {
		e.t.Fatalf("no log %q (use open)", name)
	}
	return l
}

func (e *scriptEnv) int(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		e.t.Fatalf("bad number %q", s)
	}
	return n
}

// run executes one command and returns its output. Commands:
//
//	open NAME                      a new or existing log in /NAME
//	append NAME EPOCH VAL...       leader append of one batch
//	begin-epoch NAME EPOCH         BeginEpoch
//	set-hw NAME OFFSET             SetHighWatermark
//	fetch FOLLOWER LEADER [LIMIT]  follower appends the leader's batches from its end (below LIMIT)
//	end-offset NAME EPOCH          EndOffsetForEpoch
//	truncate NAME OFFSET           TruncateTo
//	become-follower NAME LEADER    EndOffsetForEpoch(own latest) on LEADER, then TruncateTo
//	reopen NAME                    Close and Open
//	crash NAME                     the process dies and the disk loses what was not synced; Open
//	state NAME                     offsets and epoch cache
//	records NAME                   every record: offset, batch epoch, value
func (e *scriptEnv) run(args []string) string {
	ctx := context.Background()
	res := func(err error) string {
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		return "ok\n"
	}
	switch cmd := args[0]; cmd {
	case "open":
		e.open(args[1])
		return "ok\n"
	case "append":
		base, last, err := e.log(args[1]).AppendLeader(ctx, int32(e.int(args[2])), vals(args[3:]...))
		if err != nil {
			return res(err)
		}
		return fmt.Sprintf("%d..%d\n", base, last)
	case "begin-epoch":
		return res(e.log(args[1]).BeginEpoch(int32(e.int(args[2]))))
	case "set-hw":
		return res(e.log(args[1]).SetHighWatermark(e.int(args[2])))
	case "fetch":
		f, l := e.log(args[1]), e.log(args[2])
		limit := l.LogEndOffset()
		if len(args) > 3 {
			limit = e.int(args[3])
		}
		raw, err := l.ReadBatches(nil, f.LogEndOffset(), limit, 1<<20)
		if err != nil {
			return res(err)
		}
		end, err := f.AppendFollower(ctx, raw)
		if err != nil {
			return res(err)
		}
		return fmt.Sprintf("end %d\n", end)
	case "end-offset":
		ep, off := e.log(args[1]).EndOffsetForEpoch(int32(e.int(args[2])))
		return fmt.Sprintf("epoch %d end %d\n", ep, off)
	case "truncate":
		return res(e.log(args[1]).TruncateTo(ctx, e.int(args[2])))
	case "become-follower":
		f, l := e.log(args[1]), e.log(args[2])
		ep, off := l.EndOffsetForEpoch(f.LatestEpoch())
		if ep == UndefinedEpoch {
			off = f.HighWatermark()
		}
		return fmt.Sprintf("leader says epoch %d end %d; truncate to %d: %s", ep, off, off, res(f.TruncateTo(ctx, off)))
	case "reopen":
		if err := e.log(args[1]).Close(); err != nil {
			return res(err)
		}
		e.open(args[1])
		return "ok\n"
	case "crash":
		d := e.disks[args[1]]
		crash(e.log(args[1]), d.ffs, d.mem, wal.CrashOptions{})
		e.open(args[1])
		return "ok\n"
	case "state":
		l := e.log(args[1])
		return fmt.Sprintf("start %d end %d hw %d epochs %v\n", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark(), l.Epochs())
	case "records":
		return e.records(e.log(args[1]))
	default:
		e.t.Fatalf("unknown command %q", cmd)
		return ""
	}
}

func (e *scriptEnv) records(l *Log) string {
	raw, err := l.ReadBatches(nil, l.LogStartOffset(), l.LogEndOffset(), 1<<30)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var sb strings.Builder
	for len(raw) > 0 {
		b, rest, err := SplitBatch(raw)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		recs, err := b.Records(nil)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		for _, r := range recs {
			fmt.Fprintf(&sb, "%d e%d %s\n", r.Offset, b.LeaderEpoch(), r.Value)
		}
		raw = rest
	}
	if sb.Len() == 0 {
		return "(empty)\n"
	}
	return sb.String()
}
