package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/replog/replog/log"
	"github.com/replog/replog/transport"
)

// joinProducer is a producer of a bare Manager whose ID is its partition's
// leader: what it sends lands in the Manager's orphans (it has no
// replica), where a test reads it.
func joinProducer(maxBatchBytes int) *producer {
	m := &Manager{start: time.Now()}
	m.cfg.ID, m.cfg.MaxBatchBytes = 1, maxBatchBytes
	m.mu.calls = map[uint64]*call{}
	m.mu.orphans = map[pkey][]orphan{}
	m.mu.changed = make(chan struct{})
	return &producer{m: m, key: pkey{7, 0}, topic: "t"}
}

// newJoinCall submits a call of one record per value, as Append does; it
// is sent at once if the producer knows its leader and has room.
func newJoinCall(t *testing.T, p *producer, acks Acks, vals ...string) *call {
	t.Helper()
	var recs []log.Record
	for _, v := range vals {
		recs = append(recs, log.Record{Value: []byte(v), Timestamp: time.Unix(1700000000, int64(len(v)))})
	}
	b, err := log.EncodeBatch(nil, log.BatchHeader{ProducerID: 1, ProducerEpoch: 3}, recs, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := &call{p: p, batch: b, count: int32(len(recs)), acks: acks, reqID: p.m.reqSeq.Add(1), done: make(chan struct{})}
	if err := p.submit(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// sentReqs returns (and forgets) what the producer sent so far.
func sentReqs(p *producer) []*appendReq {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	var out []*appendReq
	for _, o := range p.m.mu.orphans[p.key] {
		out = append(out, o.req)
	}
	delete(p.m.mu.orphans, p.key)
	return out
}

// learnLeader makes the producer take node 1 as the leader, which sends
// what waits.
func learnLeader(p *producer) { p.setLeader(1, 1) }

// batchValues decodes a sent batch's values, joined by spaces.
func batchValues(t *testing.T, b []byte) string {
	t.Helper()
	if err := log.Batch(b).Validate(); err != nil {
		t.Fatalf("sent batch: %v", err)
	}
	recs, err := log.Batch(b).Records(nil)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return strings.Join(vs, " ")
}

func answered(c *call) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Calls that wait to be sent go as one batch, under the first one's
// sequence, and each is answered with its own records' offsets.
func TestProducerJoinsWaitingCalls(t *testing.T) {
	p := joinProducer(1 << 20)
	a := newJoinCall(t, p, AcksAll, "a0")
	b := newJoinCall(t, p, AcksAll, "b0", "b1")
	c := newJoinCall(t, p, AcksAll, "c0", "c1", "c2")
	learnLeader(p)
	reqs := sentReqs(p)
	if len(reqs) != 1 {
		t.Fatalf("%d batches sent, want 1", len(reqs))
	}
	r := reqs[0]
	if got := batchValues(t, r.batch); got != "a0 b0 b1 c0 c1 c2" {
		t.Fatalf("sent batch holds %q", got)
	}
	if r.firstSeq != a.firstSeq || r.lastSeq != c.lastSeq || r.count != 6 || log.Batch(r.batch).BaseSequence() != a.firstSeq {
		t.Fatalf("sent sequences %d..%d (%d records, header %d), want %d..%d", r.firstSeq, r.lastSeq, r.count,
			log.Batch(r.batch).BaseSequence(), a.firstSeq, c.lastSeq)
	}
	answerCall(p, a, r.attempt, codeOK, 1, 1, 100, 105)
	for _, x := range []struct {
		c          *call
		base, last int64
	}{{a, 100, 100}, {b, 101, 102}, {c, 103, 105}} {
		if !answered(x.c) || x.c.err != nil || x.c.base != x.base || x.c.last != x.last {
			t.Errorf("call answered %v: %d..%d, %v; want %d..%d", answered(x.c), x.c.base, x.c.last, x.c.err, x.base, x.last)
		}
	}
	if !p.idle() {
		t.Fatal("producer holds calls after the answer")
	}
}

// At most maxSentCalls calls are in flight; those submitted meanwhile go
// as one batch when an answer makes room.
func TestProducerJoinsBehindSentCalls(t *testing.T) {
	p := joinProducer(1 << 20)
	learnLeader(p)
	var first []*call
	for i := range maxSentCalls {
		first = append(first, newJoinCall(t, p, AcksAll, fmt.Sprint("s", i)))
	}
	if n := len(sentReqs(p)); n != maxSentCalls {
		t.Fatalf("%d calls sent, want %d", n, maxSentCalls)
	}
	var waiting []string
	for i := range 5 {
		v := fmt.Sprint("w", i)
		newJoinCall(t, p, AcksAll, v)
		waiting = append(waiting, v)
	}
	if n := len(sentReqs(p)); n != 0 {
		t.Fatalf("%d calls sent past the limit", n)
	}
	answerCall(p, first[0], 1, codeOK, 1, 1, 0, 0)
	reqs := sentReqs(p)
	if len(reqs) != 1 || batchValues(t, reqs[0].batch) != strings.Join(waiting, " ") {
		t.Fatalf("after an answer sent %d batches, want one of the 5 waiting calls", len(reqs))
	}
}

// A join stops at a gap in the sequences, so that a joined batch's
// sequences (first to first+count-1) are exactly its calls' and no other
// batch carries any of them: a waiting call whose caller gave up is
// dropped unsent, and an AcksNone call goes past calls that wait.
func TestProducerJoinStopsAtGap(t *testing.T) {
	p := joinProducer(1 << 20)
	a := newJoinCall(t, p, AcksAll, "a")
	b := newJoinCall(t, p, AcksAll, "b")
	c := newJoinCall(t, p, AcksAll, "c")
	d := newJoinCall(t, p, AcksAll, "d")
	p.abandon(b)
	if !answered(b) {
		t.Fatal("abandoned unsent call not dropped")
	}
	learnLeader(p)
	var got []string
	for _, r := range sentReqs(p) {
		got = append(got, fmt.Sprintf("%s %d..%d", batchValues(t, r.batch), r.firstSeq, r.lastSeq))
	}
	want := []string{fmt.Sprintf("a %d..%d", a.firstSeq, a.lastSeq), fmt.Sprintf("c d %d..%d", c.firstSeq, d.lastSeq)}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", got, want)
	}

	// AcksNone past waiting calls: e waits, f (AcksNone) goes, g waits; e
	// and g must not join over f's sequence.
	p = joinProducer(1 << 20)
	learnLeader(p)
	var first []*call
	for range maxSentCalls {
		first = append(first, newJoinCall(t, p, AcksAll, "s"))
	}
	sentReqs(p)
	e := newJoinCall(t, p, AcksLeader, "e")
	f := newJoinCall(t, p, AcksNone, "f")
	p.abandon(f)
	g := newJoinCall(t, p, AcksLeader, "g")
	if reqs := sentReqs(p); len(reqs) != 1 || reqs[0].firstSeq != f.firstSeq {
		t.Fatalf("want f alone sent, got %d batches", len(reqs))
	}
	answerCall(p, f, 1, codeOK, 1, 1, 4, 4)
	for _, s := range first[:2] {
		answerCall(p, s, 1, codeOK, 1, 1, 0, 0)
	}
	got = got[:0]
	for _, r := range sentReqs(p) {
		got = append(got, fmt.Sprintf("%s %d..%d", batchValues(t, r.batch), r.firstSeq, r.lastSeq))
	}
	want = []string{fmt.Sprintf("e %d..%d", e.firstSeq, e.lastSeq), fmt.Sprintf("g %d..%d", g.firstSeq, g.lastSeq)}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q (f is %d..%d)", got, want, f.firstSeq, f.lastSeq)
	}
}

// A caller that gives up on a joined call leaves the batch to the others:
// it goes on, and they get their offsets. Only when every caller gave up
// is a batch waiting to be resent dropped.
func TestProducerJoinedCallAbandoned(t *testing.T) {
	p := joinProducer(1 << 20)
	a := newJoinCall(t, p, AcksAll, "a")
	b := newJoinCall(t, p, AcksAll, "b")
	learnLeader(p)
	reqs := sentReqs(p)
	if len(reqs) != 1 {
		t.Fatalf("sent %d batches", len(reqs))
	}
	p.abandon(b)
	if answered(b) {
		t.Fatal("abandoning a joined call in flight answered it")
	}
	// "Retry": the batch waits to be resent, and the caller of a gives up.
	answerCall(p, a, 1, codeRetry, 0, 0, -1, -1)
	p.abandon(a)
	if !answered(a) || !answered(b) || !p.idle() {
		t.Fatal("a batch whose callers all gave up was kept")
	}

	// One caller left: the batch is resent, the same bytes under the same
	// sequence (a leader that wrote it deduplicates), and answered.
	p.setLeader(0, 2)
	c := newJoinCall(t, p, AcksAll, "c")
	d := newJoinCall(t, p, AcksAll, "d")
	p.setLeader(1, 3)
	reqs = sentReqs(p)
	if len(reqs) != 1 {
		t.Fatalf("sent %d batches", len(reqs))
	}
	p.abandon(c)
	answerCall(p, c, 1, codeRetry, 0, 0, -1, -1)
	p.isrChanged(1) // ends the retry delay
	again := sentReqs(p)
	if len(again) != 1 || again[0].attempt != 2 || again[0].firstSeq != reqs[0].firstSeq || string(again[0].batch) != string(reqs[0].batch) {
		t.Fatalf("resent %d batches; want the same batch again", len(again))
	}
	answerCall(p, c, 2, codeOK, 1, 3, 10, 11)
	if !answered(d) || d.err != nil || d.base != 11 || d.last != 11 || !answered(c) {
		t.Fatalf("after the answer: d answered %v, %d..%d, %v", answered(d), d.base, d.last, d.err)
	}
}

// Only calls with the same acks join, AcksNone calls never (their callers
// wait for no answer to share), and a joined batch stays within
// MaxBatchBytes.
func TestProducerJoinLimits(t *testing.T) {
	p := joinProducer(1 << 20)
	newJoinCall(t, p, AcksAll, "a1")
	newJoinCall(t, p, AcksAll, "a2")
	newJoinCall(t, p, AcksLeader, "l1")
	newJoinCall(t, p, AcksNone, "n1")
	newJoinCall(t, p, AcksNone, "n2")
	learnLeader(p)
	var got []string
	for _, r := range sentReqs(p) {
		got = append(got, batchValues(t, r.batch))
	}
	if strings.Join(got, "|") != "a1 a2|l1|n1|n2" {
		t.Fatalf("sent batches %q", got)
	}

	big := strings.Repeat("x", 400)
	p = joinProducer(1000)
	for range 4 {
		newJoinCall(t, p, AcksAll, big)
	}
	learnLeader(p)
	reqs := sentReqs(p)
	if len(reqs) < 2 {
		t.Fatalf("4 records of 400 bytes sent in %d batch, MaxBatchBytes 1000", len(reqs))
	}
	for _, r := range reqs {
		if len(r.batch) > 1000 {
			t.Fatalf("sent a batch of %d bytes, MaxBatchBytes 1000", len(r.batch))
		}
	}
}

// An error answer reaches every joined call.
func TestProducerJoinedCallsShareErrors(t *testing.T) {
	p := joinProducer(1 << 20)
	a := newJoinCall(t, p, AcksAll, "a")
	b := newJoinCall(t, p, AcksAll, "b")
	learnLeader(p)
	sentReqs(p)
	answerCall(p, a, 1, codeTooLarge, 0, 0, -1, -1)
	for _, c := range []*call{a, b} {
		if !answered(c) || !errors.Is(c.err, ErrRecordTooLarge) || c.base != -1 || c.last != -1 {
			t.Errorf("call answered %v with %v, offsets %d..%d", answered(c), c.err, c.base, c.last)
		}
	}
}

// Concurrent Appends through a follower, with a third of the forwarded
// appends and of their answers lost: calls join into batches, retried
// batches are written once, and every Append's offsets hold its own
// record.
func TestJoinedForwardLossRetriedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		l, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		c.net.SetLink(f, l, transport.LinkFaults{Drop: 0.3})
		c.net.SetLink(l, f, transport.LinkFaults{Drop: 0.3})
		const producers, each = 8, 10
		offsets := make([][]int64, producers)
		var g errgroup.Group
		for i := range producers {
			g.Go(func() error {
				for j := range each {
					base, last, err := c.nodes[f].rep.Append(ctx, "t", 0, rec(fmt.Sprintf("p%d/%d", i, j)), AcksAll)
					if err != nil {
						return err
					}
					if last != base {
						return fmt.Errorf("one record got offsets %d..%d", base, last)
					}
					offsets[i] = append(offsets[i], base)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		c.net.Heal()
		var want []string
		for i := range producers {
			want = append(want, names(fmt.Sprint("p", i), each)...)
		}
		recs := c.converged("t", 0)
		vals := make([]string, len(recs))
		at := map[int64]string{}
		for k, r := range recs {
			vals[k], at[r.Offset] = string(r.Value), string(r.Value)
		}
		checkValues(t, vals, want)
		for i := range producers {
			for j, off := range offsets[i] {
				if v := fmt.Sprintf("p%d/%d", i, j); at[off] != v {
					t.Errorf("append of %s answered offset %d, which holds %q", v, off, at[off])
				}
			}
		}
		b, _, _ := c.logBytes(l, "t", 0)
		batches := 0
		for rest := b; len(rest) > 0; batches++ {
			_, next, err := log.SplitBatch(rest)
			if err != nil {
				t.Fatal(err)
			}
			rest = next
		}
		if batches >= producers*each {
			t.Fatalf("%d appends stored in %d batches: none joined", producers*each, batches)
		}
		t.Logf("%d appends stored in %d batches", producers*each, batches)
	})
}

// AcksNone calls are not held back by the calls in flight: their callers
// returned, and one left waiting would be dropped. Nor do they count
// against the limit.
func TestProducerSendsAcksNonePastLimit(t *testing.T) {
	p := joinProducer(1 << 20)
	learnLeader(p)
	for i := range maxSentCalls {
		newJoinCall(t, p, AcksAll, fmt.Sprint("a", i))
	}
	var none []*call
	for i := range 3 {
		c := newJoinCall(t, p, AcksNone, fmt.Sprint("n", i))
		p.abandon(c) // as Append does
		none = append(none, c)
	}
	reqs := sentReqs(p)
	if len(reqs) != maxSentCalls+3 {
		t.Fatalf("sent %d calls, want %d AcksAll and 3 AcksNone", len(reqs), maxSentCalls)
	}
	for _, c := range none {
		if answered(c) {
			t.Fatal("an AcksNone call was dropped")
		}
	}
	w := newJoinCall(t, p, AcksAll, "w")
	if len(sentReqs(p)) != 0 || answered(w) {
		t.Fatal("an AcksAll call went past the limit")
	}
}

// A burst of AcksNone appends from one goroutine, with no fault: every
// record is written (none is held back behind the calls in flight and
// then dropped as given up).
func TestAcksNoneBurstAllWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		_, f := c.topicT()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		defer cancel()
		const n = 50
		for i := range n {
			if _, _, err := c.nodes[f].rep.Append(ctx, "t", 0, rec(fmt.Sprint("n", i)), AcksNone); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := c.nodes[f].rep.Append(ctx, "t", 0, rec("last"), AcksAll); err != nil {
			t.Fatal(err)
		}
		if recs := c.converged("t", 0); len(recs) != n+1 {
			t.Fatalf("%d AcksNone appends in a row without any fault: %d records in the log", n, len(recs)-1)
		}
	})
}

// answerCall completes c's attempt as the node it was sent to answers.
func answerCall(p *producer, c *call, attempt uint64, code byte, leader uint64, epoch int32, base, last int64) {
	p.mu.Lock()
	target := c.target
	p.mu.Unlock()
	p.complete(c, target, attempt, code, leader, epoch, base, last)
}
