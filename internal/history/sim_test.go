package history

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// simulate runs clients against a naive linearizable log: each operation
// takes effect at a random step between its invocation and its completion
// (or, for an Info append, maybe never). The history it records is correct
// by construction.
func simulate(seed uint64, clients, steps int) (History, []Entry) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	rec := NewRecorder()
	var log []Entry
	type pending struct {
		id      int
		op      OpType
		value   string
		applied bool
		offset  int64
		read    []Entry
		info    bool // will complete as Info (or never)
	}
	cur := make([]*pending, clients)
	next := 0
	for step := 0; step < steps; step++ {
		c := rng.IntN(clients)
		p := cur[c]
		switch {
		case p == nil:
			p = &pending{info: rng.IntN(10) == 0}
			if rng.IntN(3) == 0 {
				p.op = Read
				p.id = rec.InvokeRead(c, 1, 0)
			} else {
				p.op, p.value = Append, "v"+itoa(next)
				next++
				p.id = rec.InvokeAppend(c, 1, p.value)
			}
			cur[c] = p
		case !p.applied && (rng.IntN(2) == 0 || !p.info):
			p.applied = true
			if p.op == Append {
				p.offset = int64(len(log))
				log = append(log, Entry{Offset: p.offset, Value: p.value})
			} else {
				p.read = append([]Entry(nil), log[:rng.IntN(len(log)+1)]...)
			}
		default:
			switch {
			case p.info && rng.IntN(3) == 0:
				// Never completes: Info in the history.
			case p.info:
				rec.CompleteAppend(p.id, Info, 0, errSim)
			case p.op == Append:
				rec.CompleteAppend(p.id, OK, p.offset, nil)
			default:
				rec.CompleteRead(p.id, OK, p.read, nil)
			}
			cur[c] = nil
		}
	}
	return rec.History(), log
}

var errSim = simError("timeout")

type simError string

func (e simError) Error() string { return string(e) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestCheckSimulatedHistoriesPass(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		h, log := simulate(seed, 5, 600)
		res := check(t, h, map[uint64][]Entry{1: log, 2: log, 3: log}, Options{})
		if !res.OK() || res.Linearizable != "ok" {
			t.Fatalf("seed %d: correct simulated history flagged: %s", seed, res)
		}
	}
}

// A long history with many clients must still be checked quickly enough for
// the chaos suite: porcupine's search must not blow up.
func TestCheckLongSimulatedHistory(t *testing.T) {
	h, log := simulate(99, 8, 20000)
	start := time.Now()
	res := check(t, h, map[uint64][]Entry{1: log}, Options{LinearizabilityTimeout: time.Minute})
	if !res.OK() || res.Linearizable != "ok" {
		t.Fatalf("long simulated history flagged: %s", res)
	}
	t.Logf("%d ops, %d records checked in %v", len(h), len(log), time.Since(start))
}

// Mutations of correct histories, each a bug a replicated log can have,
// must be flagged.
func TestCheckSimulatedMutationsFlagged(t *testing.T) {
	mutations := map[string]func(h History, log []Entry) (History, []Entry, bool){
		"drop an acknowledged record": func(h History, log []Entry) (History, []Entry, bool) {
			for _, op := range h {
				if op.Type == Append && op.Outcome == OK {
					out := append([]Entry(nil), log[:op.Offset]...)
					for _, e := range log[op.Offset+1:] {
						out = append(out, Entry{Offset: e.Offset - 1, Value: e.Value})
					}
					return h, out, true
				}
			}
			return h, log, false
		},
		"swap two acknowledged records": func(h History, log []Entry) (History, []Entry, bool) {
			out := append([]Entry(nil), log...)
			for i := 0; i+1 < len(out); i++ {
				a, b := h.appendOf(out[i].Value), h.appendOf(out[i+1].Value)
				if a.Outcome == OK && b.Outcome == OK {
					out[i].Value, out[i+1].Value = out[i+1].Value, out[i].Value
					return h, out, true
				}
			}
			return h, log, false
		},
		"truncate the final log under a read": func(h History, log []Entry) (History, []Entry, bool) {
			longest := 0
			for _, op := range h {
				if op.Type == Read && op.Outcome == OK {
					longest = max(longest, len(op.Entries))
				}
			}
			if longest == 0 {
				return h, log, false
			}
			return h, log[:longest-1], true
		},
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			tried := 0
			for seed := uint64(1); seed <= 10; seed++ {
				h, log := simulate(seed, 4, 300)
				h, log, ok := mutate(h, log)
				if !ok {
					continue
				}
				tried++
				res := check(t, h, map[uint64][]Entry{1: log}, Options{})
				if res.OK() {
					t.Fatalf("seed %d: mutated history passed: %s", seed, res)
				}
			}
			if tried == 0 {
				t.Fatal("no history could be mutated")
			}
		})
	}
}

func (h History) appendOf(value string) Op {
	for _, op := range h {
		if op.Type == Append && op.Value == value {
			return op
		}
	}
	return Op{}
}

func TestRecorderConcurrent(t *testing.T) {
	rec := NewRecorder()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := range 100 {
				id := rec.InvokeAppend(c, 1, itoa(c*1000+i))
				rec.CompleteAppend(id, OK, int64(i), nil)
				rid := rec.InvokeRead(c, 2, 0)
				if i%10 != 0 { // some reads stay pending
					rec.CompleteRead(rid, OK, nil, nil)
				}
			}
		})
	}
	wg.Wait()
	h := rec.History()
	if len(h) != 1600 || rec.Len() != 1600 {
		t.Fatalf("len = %d, want 1600", len(h))
	}
	ticks := map[int64]bool{}
	for i, op := range h {
		if op.ID != i {
			t.Fatalf("op %d has ID %d", i, op.ID)
		}
		if op.Outcome == Info {
			if op.Type != Read || op.Complete != 0 || op.Err == "" {
				t.Fatalf("pending op not turned into Info: %v", op)
			}
		} else if op.Complete <= op.Invoke {
			t.Fatalf("op %v completes before it is invoked", op)
		}
		for _, tk := range []int64{op.Invoke, op.Complete} {
			if tk != 0 && ticks[tk] {
				t.Fatalf("tick %d used twice", tk)
			}
			ticks[tk] = true
		}
	}
	if tk := rec.Tick(); ticks[tk] {
		t.Fatalf("Tick returned a used tick %d", tk)
	}
}

func TestRecorderCompleteTwicePanics(t *testing.T) {
	rec := NewRecorder()
	id := rec.InvokeAppend(0, 1, "a")
	rec.CompleteAppend(id, OK, 0, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("second completion did not panic")
		}
	}()
	rec.CompleteAppend(id, OK, 0, nil)
}
