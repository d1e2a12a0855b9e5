package history

import (
	"fmt"
	"strings"
	"sync"
)

// OpType is the kind of a client operation.
type OpType uint8

const (
	// Append appends one record whose value is Op.Value.
	Append OpType = iota + 1
	// Read reads committed records from Op.From on.
	Read
)

// String returns "append" or "read".
func (t OpType) String() string {
	switch t {
	case Append:
		return "append"
	case Read:
		return "read"
	}
	return fmt.Sprintf("optype(%d)", uint8(t))
}

// Outcome is what the client knows about an operation once it completed.
type Outcome uint8

const (
	// Pending is an operation that has not completed (yet). History turns
	// the pending operations of a finished run into Info.
	Pending Outcome = iota
	// OK: the operation took effect and its result is known.
	OK
	// Fail: the operation certainly did not take effect. A client must
	// record Fail only for errors that guarantee it (an append rejected
	// before anything was written); anything else is Info.
	Fail
	// Info: the outcome is unknown (a timeout, a lost connection, a crash
	// of the node that served it). An Info append may or may not be in the
	// log, at any point after its invocation.
	Info
)

// String returns "pending", "ok", "fail" or "info".
func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Info:
		return "info"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Entry is one record of a log as the checker sees it: its offset and its
// value (values identify records; clients append unique values).
type Entry struct {
	Offset int64
	Value  string
}

// Op is one client operation: its invocation, its completion and its
// outcome. Times are ticks of the Recorder's logical clock: every
// invocation and completion takes the next tick, so Complete(a) < Invoke(b)
// means a returned before b was called.
type Op struct {
	ID       int     // index in the history
	Client   int     // the client (a sequential process) that issued it
	Node     uint64  // the node the call went through (informational)
	Type     OpType  // Append or Read
	Invoke   int64   // tick at which the call was made
	Complete int64   // tick at which it returned; 0 while pending
	Outcome  Outcome // see Outcome
	Value    string  // Append: the (unique) value appended
	Offset   int64   // Append OK: the offset the log assigned
	From     int64   // Read: the offset read from
	Entries  []Entry // Read OK: the records returned, from From on
	Err      string  // the error text, if any
}

// String describes the operation in one line.
func (o Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d c%d n%d [%d,%d] %s", o.ID, o.Client, o.Node, o.Invoke, o.Complete, o.Type)
	switch o.Type {
	case Append:
		fmt.Fprintf(&b, " %q %s", o.Value, o.Outcome)
		if o.Outcome == OK {
			fmt.Fprintf(&b, " @%d", o.Offset)
		}
	case Read:
		fmt.Fprintf(&b, " from %d %s", o.From, o.Outcome)
		if o.Outcome == OK {
			fmt.Fprintf(&b, " %d records", len(o.Entries))
			if n := len(o.Entries); n > 0 {
				fmt.Fprintf(&b, " (last %q@%d)", o.Entries[n-1].Value, o.Entries[n-1].Offset)
			}
		}
	}
	if o.Err != "" {
		fmt.Fprintf(&b, " err=%q", o.Err)
	}
	return b.String()
}

// History is a finished run's operations, indexed by Op.ID.
type History []Op

// Recorder records the operations of concurrent clients. Safe for
// concurrent use. Its clock is logical: Tick, Invoke and every completion
// take the next value of one counter under one lock, so ticks are totally
// ordered and consistent with real time.
type Recorder struct {
	mu struct {
		sync.Mutex
		tick int64
		ops  []Op
	}
}

// NewRecorder returns an empty Recorder whose clock starts at 0.
func NewRecorder() *Recorder { return &Recorder{} }

// Tick advances the clock and returns the new tick. Callers use it to
// place other events (faults) on the operations' time line.
func (r *Recorder) Tick() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.tick++
	return r.mu.tick
}

// InvokeAppend records the start of an append of value by client through
// node and returns the operation's ID. Call it just before the call.
func (r *Recorder) InvokeAppend(client int, node uint64, value string) int {
	return r.invoke(Op{Client: client, Node: node, Type: Append, Value: value})
}

// InvokeRead records the start of a read from offset from by client
// through node and returns the operation's ID.
func (r *Recorder) InvokeRead(client int, node uint64, from int64) int {
	return r.invoke(Op{Client: client, Node: node, Type: Read, From: from})
}

func (r *Recorder) invoke(op Op) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.tick++
	op.ID = len(r.mu.ops)
	op.Invoke = r.mu.tick
	r.mu.ops = append(r.mu.ops, op)
	return op.ID
}

// CompleteAppend records the return of append id: outcome OK with the
// offset it was given, or Fail or Info with err.
func (r *Recorder) CompleteAppend(id int, outcome Outcome, offset int64, err error) {
	r.complete(id, outcome, func(op *Op) {
		op.Offset = offset
		if err != nil {
			op.Err = err.Error()
		}
	})
}

// CompleteRead records the return of read id: outcome OK with the records
// it returned (the Recorder keeps entries; the caller must not modify it),
// or Fail or Info with err.
func (r *Recorder) CompleteRead(id int, outcome Outcome, entries []Entry, err error) {
	r.complete(id, outcome, func(op *Op) {
		op.Entries = entries
		if err != nil {
			op.Err = err.Error()
		}
	})
}

func (r *Recorder) complete(id int, outcome Outcome, fill func(*Op)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.tick++
	op := &r.mu.ops[id]
	if op.Outcome != Pending {
		panic(fmt.Sprintf("history: operation %d completed twice", id))
	}
	op.Complete = r.mu.tick
	op.Outcome = outcome
	fill(op)
}

// Len returns the number of operations recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mu.ops)
}

// History returns a copy of the operations recorded so far. Operations
// still pending are returned as Info with Complete 0 (they may take effect
// at any later time).
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := make(History, len(r.mu.ops))
	copy(h, r.mu.ops)
	for i := range h {
		if h[i].Outcome == Pending {
			h[i].Outcome = Info
			h[i].Err = "never completed"
		}
	}
	return h
}
