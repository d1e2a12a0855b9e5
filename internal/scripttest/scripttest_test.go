package scripttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const script = `# a comment
echo a b
----
a b

# two lines of output
lines 2
----
line 1
line 2

empty
----

# at the end
`

func write(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func exec(cmd string) string {
	f := strings.Fields(cmd)
	switch f[0] {
	case "echo":
		return strings.Join(f[1:], " ") + "\n"
	case "lines":
		return "line 1\nline 2"
	}
	return ""
}

func TestParse(t *testing.T) {
	blocks, comments, err := Parse(write(t, script))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("got %d blocks: %+v", len(blocks), blocks)
	}
	want := []Block{{2, "echo a b", "a b"}, {7, "lines 2", "line 1\nline 2"}, {12, "empty", ""}}
	for i, b := range blocks {
		if b != want[i] {
			t.Errorf("block %d = %+v, want %+v", i, b, want[i])
		}
	}
	if len(comments) != 4 || comments[0][0] != "# a comment" || comments[3][0] != "# at the end" {
		t.Errorf("comments = %q", comments)
	}
	if _, _, err := Parse(write(t, "cmd\nno separator\n")); err == nil {
		t.Error("a command without ---- parsed")
	}
	if _, _, err := Parse(write(t, "cmd\n")); err == nil {
		t.Error("a final command without ---- parsed")
	}
}

func TestRunRewriteKeepsTheScript(t *testing.T) {
	file := write(t, script)
	Run(t, file, false, exec)
	Run(t, file, true, exec)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != script {
		t.Errorf("rewrite of a passing script changed it:\n%s", got)
	}
}

// recorder is a testing.TB that records Errorf calls.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}

func TestRunReportsMismatch(t *testing.T) {
	file := write(t, script)
	r := &recorder{TB: t}
	Run(r, file, false, func(cmd string) string { return "wrong" })
	if len(r.errors) != 3 {
		t.Fatalf("%d mismatches reported, want 3", len(r.errors))
	}
}
