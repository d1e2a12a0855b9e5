package history

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// The model: the state is an append-only log of values. An append of v
// with known offset o is legal only when the log holds o records; it adds
// v. A read from f returning k values is legal when those values are the
// log's records f..f+k-1 (a read may return a prefix: a follower serves up
// to the high watermark it knows). The final read, synthesized from the
// reference final log after every operation, must return the whole log.

type linInput struct {
	read  bool
	final bool
	value string // append
	from  int64  // read
}

type linOutput struct {
	known  bool     // append: the offset is known
	offset int64    // append
	values []string // read
}

// logState is a persistent (immutable, shared) list: each state points to
// the state before its last append. h chains a hash of the values.
type logState struct {
	prev *logState
	val  string
	n    int64
	h    uint64
}

func (s *logState) push(v string) *logState {
	h := s.h ^ 0x9e3779b97f4a7c15
	for i := 0; i < len(v); i++ {
		h ^= uint64(v[i])
		h *= 1099511628211
	}
	return &logState{prev: s, val: v, n: s.n + 1, h: h}
}

// at returns the state holding the first n records of s (n <= s.n).
func (s *logState) at(n int64) *logState {
	for s.n > n {
		s = s.prev
	}
	return s
}

// holds reports whether s's records from..from+len(values)-1 are values.
func (s *logState) holds(from int64, values []string) bool {
	end := from + int64(len(values))
	if from < 0 || end > s.n {
		return false
	}
	for t := s.at(end); t.n > from; t = t.prev {
		if t.val != values[t.n-1-from] {
			return false
		}
	}
	return true
}

func equalStates(a, b *logState) bool {
	for a != b {
		if a.n != b.n || a.h != b.h || a.val != b.val {
			return false
		}
		a, b = a.prev, b.prev
	}
	return true
}

func logModel() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return &logState{} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(*logState), input.(linInput), output.(linOutput)
			switch {
			case !in.read:
				if out.known && out.offset != s.n {
					return false, s
				}
				return true, s.push(in.value)
			case in.final:
				return int64(len(out.values)) == s.n && s.holds(0, out.values), s
			default:
				return s.holds(in.from, out.values), s
			}
		},
		Equal: func(a, b any) bool { return equalStates(a.(*logState), b.(*logState)) },
		Hash:  func(s any) uint64 { return s.(*logState).h ^ uint64(s.(*logState).n) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			if in.read {
				return fmt.Sprintf("read(%d) -> %d values", in.from, len(out.values))
			}
			if out.known {
				return fmt.Sprintf("append(%q) -> %d", in.value, out.offset)
			}
			return fmt.Sprintf("append(%q) -> ?", in.value)
		},
	}
}

// linOperations turns the history into porcupine operations: OK appends
// and reads as they are; Info appends with an unbounded return, and with
// their offset when the final log holds their value (where the whole log
// must be, by the final read); Info appends that nothing observed and all
// Fail operations are left out (they took no visible effect, or the other
// checks flag them).
func (c *checker) linOperations() []porcupine.Operation {
	observed := map[string]bool{}
	var last int64
	for _, op := range c.h {
		last = max(last, op.Invoke, op.Complete)
		if op.Type == Read && op.Outcome == OK {
			for _, e := range op.Entries {
				observed[e.Value] = true
			}
		}
	}
	never := int64(math.MaxInt64)
	ops := make([]porcupine.Operation, 0, len(c.h)+1)
	for _, op := range c.h {
		switch {
		case op.Type == Append && op.Outcome == OK:
			ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: linInput{value: op.Value},
				Call: op.Invoke, Output: linOutput{known: true, offset: op.Offset}, Return: op.Complete})
		case op.Type == Append && op.Outcome == Info:
			off, in := c.refPos[op.Value]
			if !in && !observed[op.Value] {
				continue
			}
			ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: linInput{value: op.Value},
				Call: op.Invoke, Output: linOutput{known: in, offset: off}, Return: never})
		case op.Type == Read && op.Outcome == OK:
			vals := make([]string, len(op.Entries))
			for i, e := range op.Entries {
				vals[i] = e.Value
			}
			ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: linInput{read: true, from: op.From},
				Call: op.Invoke, Output: linOutput{values: vals}, Return: op.Complete})
		}
	}
	vals := make([]string, len(c.ref))
	for i, e := range c.ref {
		vals[i] = e.Value
	}
	return append(ops, porcupine.Operation{ClientId: -1, Input: linInput{read: true, final: true},
		Call: last + 1, Output: linOutput{values: vals}, Return: last + 2})
}

// checkLinearizable runs porcupine unless told not to, or unless an
// expected loss makes the history non-linearizable by design.
func (c *checker) checkLinearizable() {
	switch {
	case c.opts.SkipLinearizability:
		c.res.Linearizable = "skipped: disabled"
		return
	case len(c.res.Expected) > 0:
		c.res.Linearizable = "skipped: records were lost, as expected"
		return
	}
	res := porcupine.CheckOperationsTimeout(logModel(), c.linOperations(), c.opts.LinearizabilityTimeout)
	switch res {
	case porcupine.Ok:
		c.res.Linearizable = "ok"
	case porcupine.Illegal:
		c.res.Linearizable = "illegal"
		c.report(NotLinearizable, false, nil, "no linearization of the appends and reads (with the final log as a last read) exists for an append-only log")
	default:
		c.res.Linearizable = fmt.Sprintf("unknown (timed out after %v)", c.opts.LinearizabilityTimeout)
	}
}
