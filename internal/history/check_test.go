package history

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// builder writes histories by hand: each op gives its invoke and complete
// ticks explicitly.
type builder struct{ h History }

func (b *builder) add(op Op) int {
	op.ID = len(b.h)
	b.h = append(b.h, op)
	return op.ID
}

// ok appends value at offset, acknowledged.
func (b *builder) ok(client int, inv, comp int64, value string, offset int64) int {
	return b.add(Op{Client: client, Type: Append, Invoke: inv, Complete: comp, Outcome: OK, Value: value, Offset: offset})
}

func (b *builder) info(client int, inv int64, value string) int {
	return b.add(Op{Client: client, Type: Append, Invoke: inv, Outcome: Info, Value: value})
}

func (b *builder) fail(client int, inv, comp int64, value string) int {
	return b.add(Op{Client: client, Type: Append, Invoke: inv, Complete: comp, Outcome: Fail, Value: value, Err: "rejected"})
}

// read from offset from returned values at from, from+1, ...
func (b *builder) read(client int, inv, comp int64, from int64, values ...string) int {
	return b.add(Op{Client: client, Type: Read, Invoke: inv, Complete: comp, Outcome: OK, From: from, Entries: entries(from, values...)})
}

func entries(from int64, values ...string) []Entry {
	es := make([]Entry, len(values))
	for i, v := range values {
		es[i] = Entry{Offset: from + int64(i), Value: v}
	}
	return es
}

// same gives n replicas the same log.
func same(n int, values ...string) map[uint64][]Entry {
	m := map[uint64][]Entry{}
	for id := uint64(1); id <= uint64(n); id++ {
		m[id] = entries(0, values...)
	}
	return m
}

func check(t *testing.T, h History, finals map[uint64][]Entry, opts Options) *Result {
	t.Helper()
	if opts.LinearizabilityTimeout == 0 {
		opts.LinearizabilityTimeout = 20 * time.Second
	}
	res, err := Check(h, finals, opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

func kinds(vs []Violation) map[Kind]int {
	m := map[Kind]int{}
	for _, v := range vs {
		m[v.Kind]++
	}
	return m
}

// goodHistory: three clients, concurrent appends, an Info append that made
// it, one that did not, a failed append, a stale (prefix) follower read.
func goodHistory() (History, map[uint64][]Entry) {
	var b builder
	b.ok(0, 1, 4, "a", 0)
	b.ok(1, 2, 5, "b", 1) // concurrent with a
	b.info(2, 3, "c")     // made it, at 2
	b.read(0, 6, 7, 0, "a")
	b.ok(0, 8, 9, "d", 3)
	b.fail(1, 10, 11, "e")
	b.info(1, 12, "f") // never made it
	b.read(1, 13, 14, 0, "a", "b", "c", "d")
	b.read(0, 15, 16, 2, "c")
	return b.h, same(3, "a", "b", "c", "d")
}

func TestCheckGoodHistoryPasses(t *testing.T) {
	h, finals := goodHistory()
	res := check(t, h, finals, Options{})
	if !res.OK() || res.Linearizable != "ok" {
		t.Fatalf("good history flagged: %s", res)
	}
	want := Stats{Appends: 6, AppendsOK: 3, AppendsFailed: 1, AppendsInfo: 2, Reads: 3, ReadsOK: 3, ReadEntries: 6, FinalLen: 4, Replicas: 3}
	if res.Stats != want {
		t.Fatalf("stats = %+v, want %+v", res.Stats, want)
	}
}

func TestCheckEmptyHistoryPasses(t *testing.T) {
	res := check(t, nil, same(3), Options{})
	if !res.OK() {
		t.Fatalf("empty history flagged: %s", res)
	}
}

// Each bad history must be flagged with (at least) the kinds named.
func TestCheckFlagsBadHistories(t *testing.T) {
	tests := []struct {
		name  string
		build func() (History, map[uint64][]Entry)
		want  []Kind
	}{
		{"lost write", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.ok(0, 3, 4, "b", 1)
			return b.h, same(3, "a")
		}, []Kind{Lost, NotLinearizable}},
		{"duplicated record in the log", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.ok(0, 3, 4, "b", 1)
			return b.h, same(3, "a", "b", "a")
		}, []Kind{Duplicate, NotLinearizable}},
		{"record acknowledged at one offset, stored at another", func() (History, map[uint64][]Entry) {
			var b builder
			b.info(1, 1, "x")
			b.ok(0, 2, 3, "a", 0)
			return b.h, same(3, "x", "a")
		}, []Kind{Duplicate, NotLinearizable}},
		{"two records acknowledged at one offset", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 3, "a", 0)
			b.ok(1, 2, 4, "b", 0)
			return b.h, same(3, "a", "b")
		}, []Kind{Conflict, Duplicate, NotLinearizable}},
		{"gap in the log", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.ok(0, 3, 4, "b", 2)
			return b.h, map[uint64][]Entry{1: {{0, "a"}, {2, "b"}}}
		}, []Kind{Gap}},
		{"gap in a read", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.ok(0, 3, 4, "b", 1)
			b.add(Op{Client: 1, Type: Read, Invoke: 5, Complete: 6, Outcome: OK, Entries: []Entry{{0, "a"}, {2, "b"}}})
			return b.h, same(3, "a", "b")
		}, []Kind{Gap, Duplicate}},
		{"stale read of a record later lost", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.info(0, 3, "b")
			b.read(1, 4, 5, 0, "a", "b")
			return b.h, same(3, "a")
		}, []Kind{StaleRead, NotLinearizable}},
		{"stale read of a record later replaced", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.info(0, 3, "b")
			b.read(1, 4, 5, 0, "a", "b")
			b.ok(1, 6, 7, "c", 1)
			return b.h, same(3, "a", "c")
		}, []Kind{StaleRead, NotLinearizable}},
		{"reordered acknowledgement", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 1) // acknowledged at tick 2 ...
			b.ok(1, 3, 4, "b", 0) // ... before b began, yet b is first
			return b.h, same(3, "b", "a")
		}, []Kind{RealTime, NotLinearizable}},
		{"phantom record nobody appended", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			return b.h, same(3, "a", "zzz")
		}, []Kind{Phantom, NotLinearizable}},
		{"record of a failed append", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.fail(0, 3, 4, "b")
			return b.h, same(3, "a", "b")
		}, []Kind{Phantom, NotLinearizable}},
		{"phantom in a read only", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.read(1, 3, 4, 0, "a", "ghost")
			return b.h, same(3, "a")
		}, []Kind{Phantom, StaleRead}},
		{"divergent replicas", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.info(1, 3, "b")
			b.info(2, 4, "c")
			return b.h, map[uint64][]Entry{1: entries(0, "a", "b"), 2: entries(0, "a", "c"), 3: entries(0, "a", "b")}
		}, []Kind{Divergence}},
		{"replica missing a suffix", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.ok(0, 3, 4, "b", 1)
			return b.h, map[uint64][]Entry{1: entries(0, "a", "b"), 2: entries(0, "a")}
		}, []Kind{Divergence}},
		{"read of the future (only porcupine sees it)", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "a", 0)
			b.read(1, 3, 4, 0, "a", "b") // returned b before b's append began
			b.info(0, 5, "b")
			return b.h, same(3, "a", "b")
		}, []Kind{NotLinearizable}},
		{"interleaved acknowledgements and prefix reads pass", func() (History, map[uint64][]Entry) {
			var b builder
			b.ok(0, 1, 2, "b", 0)
			b.read(1, 3, 4, 0, "b")
			b.ok(0, 5, 8, "c", 1)
			b.read(1, 6, 7, 1, "c")  // saw c before c's append returned
			b.read(2, 9, 10, 0, "b") // a follower behind: a prefix, fine
			return b.h, same(3, "b", "c")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, finals := tt.build()
			res := check(t, h, finals, Options{})
			got := kinds(res.Violations)
			for _, k := range tt.want {
				if got[k] == 0 {
					t.Errorf("no %s violation; result: %s", k, res)
				}
			}
			if len(tt.want) == 0 && !res.OK() {
				t.Errorf("flagged: %s", res)
			}
			for _, v := range res.Violations {
				if v.Msg == "" {
					t.Errorf("violation without a message: %v", v)
				}
			}
		})
	}
}

func TestCheckExpectLoss(t *testing.T) {
	var b builder
	b.ok(0, 1, 2, "a", 0)
	b.ok(0, 3, 4, "b", 1)        // lost in a crash of every node
	b.read(1, 5, 6, 0, "a", "b") // saw b before the crash
	b.ok(0, 7, 8, "c", 1)        // after the crash: offset 1 again
	finals := same(3, "a", "c")

	strict := check(t, b.h, finals, Options{})
	if k := kinds(strict.Violations); k[Lost] == 0 || k[StaleRead] == 0 || k[Conflict] == 0 || k[RealTime] == 0 {
		t.Fatalf("without ExpectLoss, want lost, stale-read, conflict and real-time violations: %s", strict)
	}

	res := check(t, b.h, finals, Options{ExpectLoss: true})
	if !res.OK() {
		t.Fatalf("ExpectLoss: violations: %s", res)
	}
	if k := kinds(res.Expected); k[Lost] != 1 || k[StaleRead] != 1 || k[Conflict] != 1 || k[RealTime] != 1 {
		t.Fatalf("ExpectLoss: expected = %v, want one lost, stale-read, conflict and real-time: %s", k, res)
	}
	if res.Linearizable != "skipped: records were lost, as expected" {
		t.Fatalf("Linearizable = %q", res.Linearizable)
	}
}

func TestCheckExpectLossStillFlagsStructuralViolations(t *testing.T) {
	var b builder
	b.ok(0, 1, 2, "a", 0)
	b.ok(0, 3, 4, "b", 1)
	finals := map[uint64][]Entry{1: entries(0, "a", "ghost", "a"), 2: entries(0, "a")}
	res := check(t, b.h, finals, Options{ExpectLoss: true})
	got := kinds(res.Violations)
	for _, k := range []Kind{Phantom, Duplicate, Divergence} {
		if got[k] == 0 {
			t.Errorf("no %s violation under ExpectLoss: %s", k, res)
		}
	}
	if kinds(res.Expected)[Lost] != 1 {
		t.Errorf("b's loss not reported as expected: %s", res)
	}
}

// A loss with ExpectLoss whose acknowledged offset turns up holding another
// value reported as expected; but a surviving record that moved is not.
func TestCheckExpectLossDoesNotExcuseMovedRecords(t *testing.T) {
	var b builder
	b.info(1, 1, "x")
	b.ok(0, 2, 3, "a", 0)
	res := check(t, b.h, same(3, "x", "a"), Options{ExpectLoss: true})
	if kinds(res.Violations)[Duplicate] == 0 {
		t.Fatalf("moved record not flagged under ExpectLoss: %s", res)
	}
}

func TestCheckRejectsInvalidHistories(t *testing.T) {
	tests := map[string]History{
		"duplicate value": {
			{ID: 0, Type: Append, Invoke: 1, Complete: 2, Outcome: OK, Value: "a"},
			{ID: 1, Type: Append, Invoke: 3, Complete: 4, Outcome: OK, Value: "a", Offset: 1},
		},
		"wrong id":          {{ID: 3, Type: Append, Invoke: 1, Complete: 2, Outcome: OK, Value: "a"}},
		"pending":           {{ID: 0, Type: Append, Invoke: 1, Outcome: Pending, Value: "a"}},
		"complete < invoke": {{ID: 0, Type: Read, Invoke: 5, Complete: 2, Outcome: OK}},
		"ok never complete": {{ID: 0, Type: Read, Invoke: 5, Outcome: OK}},
		"unknown type":      {{ID: 0, Invoke: 1, Complete: 2, Outcome: OK}},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Check(h, same(1), Options{}); !errors.Is(err, ErrInvalidHistory) {
				t.Fatalf("err = %v, want ErrInvalidHistory", err)
			}
		})
	}
}

func TestCheckSkipLinearizability(t *testing.T) {
	h, finals := goodHistory()
	res := check(t, h, finals, Options{SkipLinearizability: true})
	if !res.OK() || res.Linearizable != "skipped: disabled" {
		t.Fatalf("result: %s", res)
	}
}

func TestResultString(t *testing.T) {
	var b builder
	b.ok(0, 1, 2, "a", 0)
	res := check(t, b.h, same(2), Options{})
	s := res.String()
	for _, want := range []string{"lost", `"a"`, "ops [0]"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, missing %q", s, want)
		}
	}
	if got := fmt.Sprint(Kind(99), OpType(9), Outcome(9)); got != "kind(99) optype(9) outcome(9)" {
		t.Errorf("unknown enums print as %q", got)
	}
	if got := (Op{Type: Read, Outcome: OK, Entries: entries(0, "a")}).String(); !strings.Contains(got, `1 records (last "a"@0)`) {
		t.Errorf("read prints as %q", got)
	}
}

func TestResultStringCapsEachKind(t *testing.T) {
	var b builder
	for i := range 25 {
		b.ok(0, int64(2*i+1), int64(2*i+2), itoa(i), int64(i))
	}
	res := check(t, b.h, same(1), Options{SkipLinearizability: true})
	s := res.String()
	if got := strings.Count(s, "\n  lost:"); got != maxShownPerKind {
		t.Errorf("%d lost lines shown, want %d:\n%s", got, maxShownPerKind, s)
	}
	if !strings.Contains(s, "... and 15 more lost") {
		t.Errorf("no count of the lost violations not shown:\n%s", s)
	}
}
