package scripttest

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Block is one command of a script and the output it is expected to give.
type Block struct {
	Line     int    // line number of the command in the script
	Cmd      string // the command line as written
	Expected string // the expected output, lines joined by "\n", no final newline
}

// Parse reads the script in file. comments[i] holds the comment and blank
// lines before block i; comments[len(blocks)] those after the last block.
func Parse(file string) (blocks []Block, comments [][]string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	comments = [][]string{nil}
	var cur *Block
	var out []string
	inOutput := false
	finish := func() {
		cur.Expected = strings.Join(out, "\n")
		blocks = append(blocks, *cur)
		comments = append(comments, nil)
		cur, out, inOutput = nil, nil, false
	}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case inOutput && line == "":
			finish()
		case inOutput:
			out = append(out, line)
		case cur != nil && strings.TrimSpace(line) == "----":
			inOutput = true
		case cur != nil:
			return nil, nil, fmt.Errorf("%s:%d: want ---- after the command %q", file, n, cur.Cmd)
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
			comments[len(blocks)] = append(comments[len(blocks)], line)
		default:
			cur = &Block{Line: n, Cmd: line}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if cur != nil {
		if !inOutput {
			return nil, nil, fmt.Errorf("%s:%d: want ---- after the command %q", file, cur.Line, cur.Cmd)
		}
		finish()
	}
	return blocks, comments, nil
}

// Run runs the script in file: run executes each command line in order and
// returns its output (trailing newlines are ignored). A mismatch is reported
// with t.Errorf, naming the file and line, and the script goes on. With
// rewrite, nothing is compared and the file is written back with the outputs
// run returned, comments kept.
func Run(t testing.TB, file string, rewrite bool, run func(cmd string) string) {
	t.Helper()
	blocks, comments, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, blk := range blocks {
		got := strings.TrimRight(run(blk.Cmd), "\n")
		if !rewrite && got != blk.Expected {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, blk.Line, blk.Cmd, got, blk.Expected)
		}
		for _, c := range comments[i] {
			b.WriteString(c + "\n")
		}
		if got == "" {
			fmt.Fprintf(&b, "%s\n----\n\n", blk.Cmd)
		} else {
			fmt.Fprintf(&b, "%s\n----\n%s\n\n", blk.Cmd, got)
		}
	}
	for _, c := range comments[len(blocks)] {
		b.WriteString(c + "\n")
	}
	if rewrite {
		text := strings.TrimRight(b.String(), "\n") + "\n"
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
