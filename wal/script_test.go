package wal

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/replog/replog/internal/scripttest"
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
// Lines starting with # are comments. Each script runs against one Log on a
// fresh MemFS; see scriptEnv.run for the commands.
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
	env := &scriptEnv{t: t, fs: NewMemFS()}
	defer env.closeLog()
	scripttest.Run(t, file, *rewrite, env.run)
}

type scriptEnv struct {
	t    *testing.T
	fs   *MemFS
	l    *Log
	opts Options
}

func (e *scriptEnv) closeLog() {
	if e.l != nil {
		_ = e.l.Close() // scripts close explicitly when the result matters
		<-e.l.Done()
		e.l = nil
	}
}

// run executes one command and returns its output. Commands:
//
//	open [segment-size=N] [durability=always|never]   start and end
//	append P...        append payloads, print their positions
//	enqueue P...       enqueue without waiting
//	sync | close       Sync, Close
//	crash [torn=SEED]  crash the MemFS (the open Log is closed after it)
//	read POS           ReadAt
//	frames [FROM]      every frame from FROM (default Start)
//	truncate POS       TruncateAfter
//	delete-before POS  DeleteBefore, print the new start
//	ends               start, written, durable, next
//	ls                 the directory with file sizes
//	corrupt FILE OFF   flip the low bit of a byte (durably)
//	write FILE zeros|garbage|frame N [POS]  append N zero bytes, N bytes of
//	                   0x5A, or a frame of N bytes for POS (durably)
//	cut FILE SIZE      truncate a file (durably)
//	remove FILE        remove a file (durably)
func (e *scriptEnv) run(cmd string) string {
	ctx := context.Background()
	f := strings.Fields(cmd)
	args := f[1:]
	switch f[0] {
	case "open":
		e.closeLog()
		e.opts = Options{FS: e.fs, Dir: testDir, SegmentSize: 256}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "segment-size":
				e.opts.SegmentSize = int64(e.atoi(v))
			case "durability":
				e.opts.Durability = map[string]Durability{"always": SyncAlways, "never": SyncNever}[v]
			}
		}
		l, err := Open(e.opts)
		if err != nil {
			return errString(err)
		}
		e.l = l
		return e.run("ends")
	case "append", "enqueue":
		var out []string
		for _, p := range args {
			pos, end, err := e.l.Enqueue(ctx, []byte(p))
			if err == nil && f[0] == "append" {
				err = e.l.Wait(ctx, end)
			}
			if err != nil {
				out = append(out, errString(err))
				break
			}
			out = append(out, fmt.Sprintf("%s@%d", p, pos))
		}
		return strings.Join(out, " ")
	case "sync":
		return errString(e.l.Sync(ctx))
	case "close":
		err := e.l.Close()
		<-e.l.Done()
		e.l = nil
		return errString(err)
	case "crash":
		opts := CrashOptions{}
		if len(args) > 0 {
			opts = CrashOptions{Torn: true, Seed: uint64(e.atoi(strings.TrimPrefix(args[0], "torn=")))}
		}
		e.fs.Crash(opts)
		e.closeLog()
		return "ok"
	case "read":
		p, next, err := e.l.ReadAt(Pos(e.atoi(args[0])), nil)
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("%s next=%d", p, next)
	case "frames":
		from := e.l.Start()
		if len(args) > 0 {
			from = Pos(e.atoi(args[0]))
		}
		var out []string
		for fr, err := range e.l.Frames(from) {
			if err != nil {
				out = append(out, errString(err))
				break
			}
			out = append(out, fmt.Sprintf("%d: %s", fr.Pos, fr.Payload))
		}
		return strings.Join(out, "\n")
	case "truncate":
		return errString(e.l.TruncateAfter(ctx, Pos(e.atoi(args[0]))))
	case "delete-before":
		start, err := e.l.DeleteBefore(Pos(e.atoi(args[0])))
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("start=%d", start)
	case "ends":
		return fmt.Sprintf("start=%d written=%d durable=%d next=%d",
			e.l.Start(), e.l.WrittenEnd(), e.l.DurableEnd(), e.l.NextPos())
	case "ls":
		names, err := e.fs.ReadDir(testDir)
		if err != nil {
			return errString(err)
		}
		var out []string
		for _, n := range names {
			size, _ := e.fs.Stat(join(testDir, n))
			out = append(out, fmt.Sprintf("%s %d", n, size))
		}
		return strings.Join(out, "\n")
	case "corrupt":
		b := rawRead(e.t, e.fs, args[0])
		b[e.atoi(args[1])] ^= 1
		rawWrite(e.t, e.fs, args[0], b)
		return "ok"
	case "write":
		return e.write(args)
	case "cut":
		b := rawRead(e.t, e.fs, args[0])
		rawWrite(e.t, e.fs, args[0], b[:e.atoi(args[1])])
		return "ok"
	case "remove":
		if err := e.fs.Remove(join(testDir, args[0])); err != nil {
			return errString(err)
		}
		return errString(e.fs.SyncDir(testDir))
	}
	e.t.Fatalf("unknown command %q", cmd)
	return ""
}

func (e *scriptEnv) write(args []string) string {
	b := rawRead(e.t, e.fs, args[0])
	n := e.atoi(args[2])
	switch args[1] {
	case "zeros":
		b = append(b, make([]byte, n)...)
	case "garbage":
		b = append(b, strings.Repeat("\x5a", n)...)
	case "frame":
		p := []byte(strings.Repeat("f", n))
		b = appendFrame(b, Pos(e.atoi(args[3])), p, xxhashSum(p))
	default:
		e.t.Fatalf("write: unknown kind %q", args[1])
	}
	rawWrite(e.t, e.fs, args[0], b)
	return "ok"
}

func (e *scriptEnv) atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		e.t.Fatalf("not a number: %q", s)
	}
	return n
}

// errString prints an error for a script: ok, or the error's text with the
// sentinel it matches.
func errString(err error) string {
	if err == nil {
		return "ok"
	}
	for _, s := range []error{ErrCorrupt, ErrOutOfRange, ErrNotFrameBoundary, ErrClosed, ErrStorageStalled, io.EOF} {
		if errors.Is(err, s) {
			return "error: " + err.Error()
		}
	}
	return "error (unexpected kind): " + err.Error()
}
