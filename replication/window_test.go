package replication

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

func TestFollowerWindow(t *testing.T) {
	var f fstate
	for i := range maxPushesInFlight {
		if !f.windowOpen() {
			t.Fatalf("window closed after %d pushes", i)
		}
		f.sent(int64(10*(i+1)), 100, int64(i))
	}
	if f.windowOpen() || f.sentEnd != 10*maxPushesInFlight {
		t.Fatalf("window after %d pushes: open %v, sentEnd %d", maxPushesInFlight, f.windowOpen(), f.sentEnd)
	}
	if f.progressAt != 0 {
		t.Fatalf("progressAt = %d: only the first push of an idle window starts the clock", f.progressAt)
	}
	// An ack covering part of a push keeps it in flight. The resend
	// timeout becomes twice the round trip of the last push acknowledged
	// (sent at 1, acknowledged at 100), never below the base nor above
	// the limit.
	f.acked(25, 100, 10, 1000)
	if len(f.inflight) != maxPushesInFlight-2 || f.inBytes != 100*(maxPushesInFlight-2) || !f.windowOpen() {
		t.Fatalf("after ack 25: %d in flight, %d bytes", len(f.inflight), f.inBytes)
	}
	if got := f.timeout(10); got != 198 {
		t.Fatalf("resend timeout %d after a round trip of 99, want 198", got)
	}
	f.acked(10*maxPushesInFlight, maxPushesInFlight, 10, 1000)
	if len(f.inflight) != 0 || f.inBytes != 0 {
		t.Fatalf("after the last ack: %d in flight, %d bytes", len(f.inflight), f.inBytes)
	}
	if got := f.timeout(10); got != 10 {
		t.Fatalf("resend timeout %d after a round trip of 1, want the base 10", got)
	}
	f.sent(500, 1, 0)
	f.acked(500, 5000, 10, 1000)
	if got := f.timeout(10); got != 1000 {
		t.Fatalf("resend timeout %d after a round trip of 5000, want the limit 1000", got)
	}
	// A late answer to pushes given up doubles it, once per generation,
	// up to the limit.
	f.acked(500, 0, 10, 1000) // nothing covered: unchanged
	f.rto = 0
	f.answeredLate(3, 10, 1000)
	f.answeredLate(3, 10, 1000)
	if got := f.timeout(10); got != 20 {
		t.Fatalf("resend timeout %d after late answers of one generation, want 20", got)
	}
	for g := range uint32(10) {
		f.answeredLate(4+g, 10, 1000)
	}
	if got := f.timeout(10); got != 1000 {
		t.Fatalf("resend timeout %d after late answers of 11 generations, want the limit 1000", got)
	}
	// Bytes close the window too.
	f.sent(1000, maxBytesInFlight, 5)
	if f.windowOpen() {
		t.Fatal("window open with maxBytesInFlight in flight")
	}
}

// A batch encoded by Append and stamped with a sequence, then an offset
// and an epoch by the leader, is a valid batch with those fields.
func TestStamping(t *testing.T) {
	recs := []log.Record{{Value: []byte("a")}, {Value: []byte("b")}}
	h := log.BatchHeader{ProducerID: 7, ProducerEpoch: 3}
	b, err := log.EncodeBatch(nil, h, recs, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	stampSequence(b, 41)
	stampBatch(b, 1000, 9)
	batch := log.Batch(b)
	if err := batch.Validate(); err != nil {
		t.Fatalf("stamped batch: %v", err)
	}
	if batch.BaseOffset() != 1000 || batch.LeaderEpoch() != 9 || batch.BaseSequence() != 41 ||
		batch.ProducerID() != 7 || batch.ProducerEpoch() != 3 || batch.LastOffset() != 1001 {
		t.Fatalf("stamped header: base %d epoch %d seq %d pid %d pepoch %d", batch.BaseOffset(),
			batch.LeaderEpoch(), batch.BaseSequence(), batch.ProducerID(), batch.ProducerEpoch())
	}
	if got := lastSeqOf(batch.BaseSequence(), batch.Count()); got != 42 {
		t.Fatalf("last sequence %d", got)
	}
}

// A reopened replica remembers the producer batches at the tail of its
// log, so a leader that restarted still deduplicates retries.
func TestRebuildProducers(t *testing.T) {
	l, err := log.Open(log.Options{WAL: wal.Options{FS: wal.NewMemFS(), Dir: "/p"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := range int32(3) {
		h := log.BatchHeader{LeaderEpoch: 1, ProducerID: 5, ProducerEpoch: 2, BaseSequence: 10 * i}
		if _, _, err := l.AppendLeaderBatch(ctx, h, []log.Record{{Value: []byte("a")}, {Value: []byte("b")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := l.AppendLeader(ctx, 1, []log.Record{{Value: []byte("no producer")}}); err != nil {
		t.Fatal(err)
	}
	r := &replica{log: l}
	r.mu.producers = map[int64]*producerState{}
	if err := readProducers(l, l.TailStart(rebuildBytes), 0, r.mu.producers); err != nil {
		t.Fatal(err)
	}
	ps := r.mu.producers[5]
	if ps == nil || len(r.mu.producers) != 1 {
		t.Fatalf("producers after rebuild: %v", r.mu.producers)
	}
	raw, err := l.ReadBatches(nil, 4, 6, 1<<20)
	if err != nil || len(raw) == 0 {
		t.Fatalf("read the third batch: %v", err)
	}
	crc := batchCRC(raw)
	prev, dup, err := ps.check(2, 20, 21, crc)
	if err != nil || !dup || prev.baseOffset != 4 || prev.lastOffset != 5 {
		t.Fatalf("retry of the third batch: %+v dup %v err %v", prev, dup, err)
	}
	// Other data under the same sequences is not taken for the retry.
	if _, _, err := ps.check(2, 20, 21, crc+1); !errors.Is(err, errSequenceConflict) {
		t.Fatalf("other data under the third batch's sequences: err = %v, want a conflict", err)
	}
}

// A producer whose oldest call is slow (its send delayed, its message
// lost) sends fewer than maxInFlight calls submitted after it, however
// many of those are answered meanwhile, so that the leader's dedup window
// still tells that call's batch apart when it arrives: it is neither
// refused as too old nor taken for another. Counting calls in flight
// instead let the calls behind a slow one cycle through, and the leader
// refused the slow one once dedupWindow newer batches were written.
func TestProducerWindowBoundsNewerBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 1, nil)
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		m := c.nodes[1].rep
		// A producer aimed at a node that does not exist: its calls are
		// answered by this test only, which plays the leader with ps.
		p := &producer{m: m, key: pkey{top.ID, 0}, topic: "t"}
		p.mu.leader, p.mu.epoch = 99, 1
		var ps producerState
		var next int64
		write := func(k *call) {
			t.Helper()
			crc := batchCRC(k.batch)
			_, dup, err := ps.check(m.producerEpoch(), k.firstSeq, k.lastSeq, crc)
			if err != nil || dup {
				t.Fatalf("leader's check of sequence %d: dup %v, err %v", k.firstSeq, dup, err)
			}
			ps.record(m.producerEpoch(), seqBatch{firstSeq: k.firstSeq, lastSeq: k.lastSeq,
				baseOffset: next, lastOffset: next, crc: crc})
			next++
		}
		// drain writes and answers every call of ks that is sent, until
		// none is; it returns how many it answered.
		drain := func(ks []*call) int {
			n := 0
			for progress := true; progress; {
				progress = false
				for _, k := range ks {
					p.mu.Lock()
					sent, attempt := k.sent, k.attempt
					p.mu.Unlock()
					if sent {
						write(k)
						answerCall(p, k, attempt, codeOK, 0, 0, 0, 0)
						<-k.done
						n++
						progress = true
					}
				}
			}
			return n
		}
		var calls []*call
		for range 4 * dedupWindow {
			k := &call{p: p, batch: encodeTestBatch(t, m), count: 1, acks: AcksAll, reqID: m.reqSeq.Add(1), done: make(chan struct{})}
			if err := p.submit(k); err != nil {
				t.Fatal(err)
			}
			calls = append(calls, k)
		}
		// calls[0] is sent, and its batch is slow to reach the leader.
		if n := drain(calls[1:]); n >= maxInFlight {
			t.Fatalf("%d calls submitted after an unanswered one were sent, want fewer than %d", n, maxInFlight)
		}
		write(calls[0]) // it arrives at last: new to the leader
		answerCall(p, calls[0], 1, codeOK, 0, 0, 0, 0)
		<-calls[0].done
		// The rest flow again, and the leader takes each as new.
		drain(calls[1:])
		p.mu.Lock()
		left := len(p.mu.calls)
		p.mu.Unlock()
		if left != 0 {
			t.Fatalf("%d calls left unanswered", left)
		}
	})
}

// A reopened replica's producer table holds the newest batches of its
// log, the ones a producer may still retry, however much the log holds:
// the rebuild used to read a fixed number of records forward from far
// back and stop at a byte budget before it reached them.
func TestRebuildProducersCoversTail(t *testing.T) {
	l, err := log.Open(log.Options{WAL: wal.Options{FS: wal.NewMemFS(), Dir: "/p"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	recs := make([]log.Record, 100)
	for i := range recs {
		recs[i] = log.Record{Value: make([]byte, 100)}
	}
	const n = 700 // 70,000 records, about 7 MB: more than rebuildBytes
	for i := range int32(n) {
		h := log.BatchHeader{LeaderEpoch: 1, ProducerID: 5, ProducerEpoch: 2, BaseSequence: 100 * i}
		if _, _, err := l.AppendLeaderBatch(ctx, h, recs); err != nil {
			t.Fatal(err)
		}
	}
	producers := map[int64]*producerState{}
	if err := readProducers(l, l.TailStart(rebuildBytes), 0, producers); err != nil {
		t.Fatal(err)
	}
	ps := producers[5]
	if ps == nil {
		t.Fatal("no producer state after the rebuild")
	}
	// Every batch a producer may still retry is known. (Checked with
	// checksum 0: a batch the table holds answers "conflict".)
	for i := int32(n - 2*maxInFlight + 1); i < n; i++ {
		first := 100 * i
		if _, _, err := ps.check(2, first, first+99, 0); !errors.Is(err, errSequenceConflict) {
			t.Fatalf("batch %d (sequence %d) after the rebuild: err = %v, want it known", i, first, err)
		}
	}
}
