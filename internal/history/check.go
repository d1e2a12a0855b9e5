package history

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kind classifies a violation.
type Kind uint8

const (
	// Lost: an acknowledged append is missing from the final log.
	Lost Kind = iota + 1
	// Duplicate: one record at two offsets (twice in a log, or acknowledged
	// or read at one offset and found at another).
	Duplicate
	// Conflict: two records at one offset (two appends acknowledged with one
	// offset).
	Conflict
	// Gap: offsets that are not dense (a log or a read that skips an offset
	// or does not start where it should).
	Gap
	// RealTime: an append acknowledged before another began has the higher
	// (or the same) offset.
	RealTime
	// StaleRead: a read returned something the final log does not hold at
	// that offset: a record later lost or replaced.
	StaleRead
	// Phantom: a record no client appended, or whose append failed for
	// sure, is in a log or was read.
	Phantom
	// Divergence: two replicas hold different logs after healing.
	Divergence
	// NotLinearizable: porcupine found no linearization of the appends and
	// reads against the model of an append-only log.
	NotLinearizable
)

var kindNames = [...]string{
	Lost: "lost", Duplicate: "duplicate", Conflict: "conflict", Gap: "gap",
	RealTime: "real-time", StaleRead: "stale-read", Phantom: "phantom",
	Divergence: "divergence", NotLinearizable: "not-linearizable",
}

// String returns the kind's short name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Violation is one broken promise, with the operations involved.
type Violation struct {
	Kind Kind
	Msg  string
	Ops  []int // IDs of the operations involved, if any
}

// String describes the violation in one line.
func (v Violation) String() string {
	if len(v.Ops) == 0 {
		return fmt.Sprintf("%s: %s", v.Kind, v.Msg)
	}
	return fmt.Sprintf("%s: %s (ops %v)", v.Kind, v.Msg, v.Ops)
}

// Options tune Check.
type Options struct {
	// ExpectLoss says that acknowledged appends may be lost (SyncNever and a
	// crash of every replica): losses, reads of lost records, offsets reused
	// after a loss and their real-time consequences are reported in
	// Result.Expected, not as violations, and the linearizability check is
	// skipped when something was lost. Everything else is still checked.
	ExpectLoss bool
	// LinearizabilityTimeout bounds porcupine's search; 0 means 30s. A search
	// that times out is reported as inconclusive in Result.Linearizable,
	// not as a violation.
	LinearizabilityTimeout time.Duration
	// SkipLinearizability skips porcupine entirely.
	SkipLinearizability bool
}

// Stats counts what Check looked at.
type Stats struct {
	Appends, AppendsOK, AppendsFailed, AppendsInfo int
	Reads, ReadsOK                                 int
	ReadEntries                                    int // entries returned by OK reads
	FinalLen                                       int // length of the reference final log
	Replicas                                       int
}

// Result is Check's verdict.
type Result struct {
	Violations []Violation // broken promises; empty means the history passed
	Expected   []Violation // losses allowed by Options.ExpectLoss
	// Linearizable is porcupine's verdict: "ok", "illegal", "unknown
	// (timed out after ...)" or "skipped: <reason>".
	Linearizable string
	// Reference is the replica whose log the history was checked against:
	// the longest final log (lowest ID among equals).
	Reference uint64
	Stats     Stats
}

// OK reports whether no violation was found.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// String summarizes the result, one violation per line.
func (r *Result) String() string {
	var b strings.Builder
	s := r.Stats
	fmt.Fprintf(&b, "appends %d (ok %d, fail %d, info %d), reads %d (ok %d, %d entries), final log %d records on %d replicas (reference n%d), linearizable: %s, %d violations, %d expected losses",
		s.Appends, s.AppendsOK, s.AppendsFailed, s.AppendsInfo, s.Reads, s.ReadsOK, s.ReadEntries,
		s.FinalLen, s.Replicas, r.Reference, r.Linearizable, len(r.Violations), len(r.Expected))
	writeCapped(&b, "", r.Violations)
	writeCapped(&b, "expected ", r.Expected)
	return b.String()
}

// maxShownPerKind bounds the violations of one kind that String lists.
const maxShownPerKind = 10

// writeCapped lists vs, at most maxShownPerKind of each kind, and counts
// the rest.
func writeCapped(b *strings.Builder, prefix string, vs []Violation) {
	shown := map[Kind]int{}
	for _, v := range vs {
		if shown[v.Kind]++; shown[v.Kind] <= maxShownPerKind {
			fmt.Fprintf(b, "\n  %s%s", prefix, v)
		}
	}
	for k := Lost; k <= NotLinearizable; k++ {
		if n := shown[k] - maxShownPerKind; n > 0 {
			fmt.Fprintf(b, "\n  ... and %d more %s%s", n, prefix, k)
		}
	}
}

// checker holds what every check needs.
type checker struct {
	h       History
	opts    Options
	ref     []Entry
	refPos  map[string]int64 // value -> offset in ref (first)
	appends map[string]int   // value -> op ID of its append
	res     *Result
}

func (c *checker) report(kind Kind, expected bool, ops []int, format string, args ...any) {
	v := Violation{Kind: kind, Msg: fmt.Sprintf(format, args...), Ops: ops}
	if expected && c.opts.ExpectLoss {
		c.res.Expected = append(c.res.Expected, v)
		return
	}
	c.res.Violations = append(c.res.Violations, v)
}

// inRef reports whether value is in the reference final log.
func (c *checker) inRef(value string) bool {
	_, ok := c.refPos[value]
	return ok
}

// Check judges a history against the final logs of the replicas (each from
// offset 0, after healing and convergence; finals maps a replica's ID to its
// log) and returns every violation found. The checks, in the spirit of
// Jepsen's Kafka workload: no acknowledged append lost; no record at two
// offsets nor two records at one offset; dense offsets; an append
// acknowledged before another began has the lower offset; every read is a
// prefix of the final log; no record in a log or a read that no client
// appended or whose append failed; every replica holds the same log; the
// appends and reads are linearizable against an append-only log.
//
// Check returns an error wrapping ErrInvalidHistory for a malformed history.
func Check(h History, finals map[uint64][]Entry, opts Options) (*Result, error) {
	if opts.LinearizabilityTimeout <= 0 {
		opts.LinearizabilityTimeout = 30 * time.Second
	}
	c := &checker{h: h, opts: opts, res: &Result{}, appends: map[string]int{}}
	if err := c.index(); err != nil {
		return nil, err
	}
	c.pickReference(finals)
	for _, id := range sortedIDs(finals) {
		c.checkLog(id, finals[id])
	}
	c.checkDivergence(finals)
	c.checkAppends()
	c.checkRealTime()
	c.checkReads()
	c.checkLinearizable()
	return c.res, nil
}

// index validates the history, counts it and maps values to appends.
func (c *checker) index() error {
	st := &c.res.Stats
	for i, op := range c.h {
		if op.ID != i {
			return fmt.Errorf("%w: op at index %d has ID %d", ErrInvalidHistory, i, op.ID)
		}
		if op.Outcome < OK || op.Outcome > Info {
			return fmt.Errorf("%w: op %d has outcome %s", ErrInvalidHistory, i, op.Outcome)
		}
		if op.Complete != 0 && op.Complete < op.Invoke {
			return fmt.Errorf("%w: op %d completes at %d before its invocation at %d", ErrInvalidHistory, i, op.Complete, op.Invoke)
		}
		if op.Outcome != Info && op.Complete == 0 {
			return fmt.Errorf("%w: op %d is %s but never completed", ErrInvalidHistory, i, op.Outcome)
		}
		switch op.Type {
		case Append:
			if prev, dup := c.appends[op.Value]; dup {
				return fmt.Errorf("%w: ops %d and %d both append %q", ErrInvalidHistory, prev, i, op.Value)
			}
			c.appends[op.Value] = i
			st.Appends++
			switch op.Outcome {
			case OK:
				st.AppendsOK++
			case Fail:
				st.AppendsFailed++
			default:
				st.AppendsInfo++
			}
		case Read:
			st.Reads++
			if op.Outcome == OK {
				st.ReadsOK++
				st.ReadEntries += len(op.Entries)
			}
		default:
			return fmt.Errorf("%w: op %d has type %s", ErrInvalidHistory, i, op.Type)
		}
	}
	return nil
}

func sortedIDs(finals map[uint64][]Entry) []uint64 {
	ids := make([]uint64, 0, len(finals))
	for id := range finals {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// pickReference chooses the longest final log (lowest ID among equals).
func (c *checker) pickReference(finals map[uint64][]Entry) {
	c.res.Stats.Replicas = len(finals)
	first := true
	for _, id := range sortedIDs(finals) {
		if first || len(finals[id]) > len(c.ref) {
			c.ref, c.res.Reference, first = finals[id], id, false
		}
	}
	c.res.Stats.FinalLen = len(c.ref)
	c.refPos = make(map[string]int64, len(c.ref))
	for _, e := range c.ref {
		if _, seen := c.refPos[e.Value]; !seen {
			c.refPos[e.Value] = e.Offset
		}
	}
}

// checkLog checks one replica's log on its own: dense offsets from 0, each
// value once, each value appended by a client whose append did not fail.
func (c *checker) checkLog(id uint64, log []Entry) {
	seen := make(map[string]int64, len(log))
	for i, e := range log {
		if e.Offset != int64(i) {
			c.report(Gap, false, nil, "replica n%d holds offset %d at position %d (offsets must be dense from 0)", id, e.Offset, i)
			break
		}
	}
	for _, e := range log {
		if prev, dup := seen[e.Value]; dup {
			c.report(Duplicate, false, c.opsOf(e.Value), "replica n%d holds %q at offsets %d and %d", id, e.Value, prev, e.Offset)
			continue
		}
		seen[e.Value] = e.Offset
		c.checkPhantom(e.Value, func() string { return fmt.Sprintf("replica n%d offset %d", id, e.Offset) }, nil)
	}
}

// checkPhantom reports value if no client appended it or its append failed;
// where describes the place it was found (called only then).
func (c *checker) checkPhantom(value string, where func() string, readers []int) {
	id, ok := c.appends[value]
	switch {
	case !ok:
		c.report(Phantom, false, readers, "%s holds %q, which no client appended", where(), value)
	case c.h[id].Outcome == Fail:
		c.report(Phantom, false, append([]int{id}, readers...), "%s holds %q, whose append failed (%s)", where(), value, c.h[id].Err)
	}
}

func (c *checker) opsOf(value string) []int {
	if id, ok := c.appends[value]; ok {
		return []int{id}
	}
	return nil
}

// checkDivergence compares every replica's log with the reference.
func (c *checker) checkDivergence(finals map[uint64][]Entry) {
	for _, id := range sortedIDs(finals) {
		log := finals[id]
		if id == c.res.Reference {
			continue
		}
		n := min(len(log), len(c.ref))
		diverged := false
		for i := 0; i < n; i++ {
			if log[i] != c.ref[i] {
				c.report(Divergence, false, nil, "replica n%d holds %q@%d where n%d holds %q@%d",
					id, log[i].Value, log[i].Offset, c.res.Reference, c.ref[i].Value, c.ref[i].Offset)
				diverged = true
				break
			}
		}
		if !diverged && len(log) != len(c.ref) {
			c.report(Divergence, false, nil, "replica n%d holds %d records, n%d holds %d", id, len(log), c.res.Reference, len(c.ref))
		}
	}
}

// checkAppends checks every acknowledged append against the final log and
// against the other acknowledged appends.
func (c *checker) checkAppends() {
	byOffset := map[int64]int{}
	for _, op := range c.h {
		if op.Type != Append || op.Outcome != OK {
			continue
		}
		off, in := c.refPos[op.Value]
		switch {
		case !in:
			c.report(Lost, true, []int{op.ID}, "%q acknowledged at offset %d is not in the final log", op.Value, op.Offset)
		case off != op.Offset:
			c.report(Duplicate, false, []int{op.ID}, "%q acknowledged at offset %d is in the final log at offset %d", op.Value, op.Offset, off)
		}
		if other, taken := byOffset[op.Offset]; taken {
			lost := !c.inRef(op.Value) || !c.inRef(c.h[other].Value)
			c.report(Conflict, lost, []int{other, op.ID}, "%q and %q both acknowledged at offset %d", c.h[other].Value, op.Value, op.Offset)
			continue
		}
		byOffset[op.Offset] = op.ID
	}
}

// checkRealTime checks that an append acknowledged before another began
// has the lower offset: sweeping the acknowledged appends by invocation,
// it keeps the one with the highest offset among those already completed.
func (c *checker) checkRealTime() {
	var acked []Op
	for _, op := range c.h {
		if op.Type == Append && op.Outcome == OK {
			acked = append(acked, op)
		}
	}
	byComplete := append([]Op(nil), acked...)
	sort.Slice(byComplete, func(i, j int) bool { return byComplete[i].Complete < byComplete[j].Complete })
	sort.Slice(acked, func(i, j int) bool { return acked[i].Invoke < acked[j].Invoke })
	var best *Op // completed append with the highest offset so far
	k := 0
	for _, b := range acked {
		for k < len(byComplete) && byComplete[k].Complete < b.Invoke {
			if best == nil || byComplete[k].Offset > best.Offset {
				best = &byComplete[k]
			}
			k++
		}
		if best != nil && best.Offset >= b.Offset {
			lost := !c.inRef(best.Value) || !c.inRef(b.Value)
			c.report(RealTime, lost, []int{best.ID, b.ID},
				"%q acknowledged at offset %d (tick %d) before %q began (tick %d), which got offset %d",
				best.Value, best.Offset, best.Complete, b.Value, b.Invoke, b.Offset)
		}
	}
}

// checkReads checks that every read is dense from where it started and a
// prefix of the final log.
func (c *checker) checkReads() {
	for _, op := range c.h {
		if op.Type != Read || op.Outcome != OK {
			continue
		}
		for i, e := range op.Entries {
			if e.Offset != op.From+int64(i) {
				c.report(Gap, false, []int{op.ID}, "read from %d returned offset %d at position %d", op.From, e.Offset, i)
				break
			}
		}
		for _, e := range op.Entries {
			c.checkPhantom(e.Value, func() string { return fmt.Sprintf("read #%d at offset %d", op.ID, e.Offset) }, []int{op.ID})
			c.checkReadEntry(op, e)
		}
	}
}

func (c *checker) checkReadEntry(op Op, e Entry) {
	off, in := c.refPos[e.Value]
	if in && off == e.Offset {
		return // the final log holds it there
	}
	ops := append([]int{op.ID}, c.opsOf(e.Value)...)
	switch {
	case in && off != e.Offset:
		c.report(Duplicate, false, ops, "read #%d saw %q at offset %d; the final log holds it at offset %d", op.ID, e.Value, e.Offset, off)
	case e.Offset >= 0 && e.Offset < int64(len(c.ref)):
		c.report(StaleRead, true, ops, "read #%d saw %q at offset %d; the final log holds %q there", op.ID, e.Value, e.Offset, c.ref[e.Offset].Value)
	default:
		c.report(StaleRead, true, ops, "read #%d saw %q at offset %d, beyond the final log's end %d", op.ID, e.Value, e.Offset, len(c.ref))
	}
}
