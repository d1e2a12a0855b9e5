package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
)

// dropProducer makes node id forget its producer of t/0, as a topic taken
// for deleted by mistake did (a metadata resync older than the topic): the
// next Append through the node starts a new producer, whose sequences
// start again at 0.
func dropProducer(c *tcluster, id uint64, t *meta.Topic) {
	m := c.nodes[id].rep
	m.mu.Lock()
	delete(m.mu.producers, pkey{t.ID, 0})
	m.mu.Unlock()
}

// The chaos suite's fresh-topic loss, deterministically: a producer that
// starts its sequences again sends another batch under a sequence the
// leader holds. The leader must not take it for a retry of the held batch
// and answer with that batch's offsets: the new batch would be
// acknowledged and never written.
func TestReusedSequenceNeverAcknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, via := range []uint64{c.leader("t", 0), c.other(c.leader("t", 0))} {
			// Sequence 0 of this node: the record "first-n" at some offset.
			first := fmt.Sprintf("first-%d", via)
			if _, _, err := c.nodes[via].rep.Append(ctx, "t", 0, rec(first), AcksAll); err != nil {
				t.Fatalf("append %s: %v", first, err)
			}
			dropProducer(c, via, top)
			// Sequence 0 again, other data.
			reused := fmt.Sprintf("reused-%d", via)
			base, _, err := c.nodes[via].rep.Append(ctx, "t", 0, rec(reused), AcksAll)
			if err == nil {
				if got := valueAt(c, base); got != reused {
					t.Fatalf("node %d: %q acknowledged at offset %d, which holds %q: acknowledged and lost",
						via, reused, base, got)
				}
			} else if errors.Is(err, meta.ErrUnknownTopic) || errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("node %d: refused with a definite error: %v", via, err)
			}
			// The producer goes on past the reused sequence.
			next := fmt.Sprintf("next-%d", via)
			base, _, err = c.nodes[via].rep.Append(ctx, "t", 0, rec(next), AcksAll)
			if err != nil {
				t.Fatalf("append %s: %v", next, err)
			}
			if got := valueAt(c, base); got != next {
				t.Fatalf("%q acknowledged at offset %d, which holds %q", next, base, got)
			}
		}
	})
}

// valueAt is the value at offset in the converged log.
func valueAt(c *tcluster, offset int64) string {
	recs := c.converged("t", 0)
	if offset < 0 || offset >= int64(len(recs)) {
		return fmt.Sprintf("<nothing: log of %d records>", len(recs))
	}
	return string(recs[offset].Value)
}

// A topic that CreateTopic returned for takes appends at once through
// every node, concurrently, none failing (no ErrUnknownTopic: a node whose
// metadata lags confirms with the controller), every acknowledged record
// written once at its offset.
func TestAppendsRightAfterCreateTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		c.waitFor("topic created", 60*time.Second, func() bool {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			defer ccancel()
			_, err := c.nodes[1].meta.CreateTopic(cctx, "t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
			return err == nil
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		acked := map[string]int64{}
		var want []string
		for _, id := range c.ids {
			for w := range 2 {
				prefix := fmt.Sprintf("n%d-w%d", id, w)
				want = append(want, names(prefix, 5)...)
				wg.Go(func() {
					for i := range 5 {
						v := fmt.Sprintf("%s/%d", prefix, i)
						base, _, err := c.nodes[id].rep.Append(ctx, "t", 0, rec(v), AcksAll)
						if err != nil {
							t.Errorf("append %s through node %d: %v", v, id, err)
							continue
						}
						mu.Lock()
						acked[v] = base
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		recs := c.converged("t", 0)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		checkValues(t, got, want)
		for v, off := range acked {
			if off >= int64(len(recs)) || string(recs[off].Value) != v {
				t.Errorf("%q acknowledged at offset %d, not there", v, off)
			}
		}
	})
}

// An append whose topic is deleted while it is in flight may have been
// written: it must not fail with ErrUnknownTopic, which says it was not.
func TestDeletionFailsSentAppendAsMaybeWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		l := c.leader("t", 0)
		f := c.other(l)
		// The leader's answers to f are lost: f's append stays in flight.
		c.net.SetLink(l, f, transport.LinkFaults{Drop: 1})
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.nodes[f].rep.Append(ctx, "t", 0, rec("in flight"), AcksLeader)
			errc <- err
		}()
		c.waitFor("append sent", 10*time.Second, func() bool {
			b, _, ok := c.logBytes(l, "t", 0)
			return ok && len(b) > 0 // written on the leader, unanswered
		})
		c.nodes[f].rep.topicDeleted(top.ID) // the deletion's event on f
		err := <-errc
		if errors.Is(err, meta.ErrUnknownTopic) || !errors.Is(err, ErrNotLeader) {
			t.Fatalf("append written, then its topic deleted: err = %v; want ErrNotLeader (outcome unknown), not ErrUnknownTopic", err)
		}
		c.net.Heal()
	})
}

// A producer answered "unknown topic" (the leader held its batch for a
// replica it never opened: the topic is deleted) fails with
// ErrUnknownTopic only if no earlier attempt may have been written.
func TestUnknownTopicAnswerAfterRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 1, nil)
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		m := c.nodes[1].rep
		// A producer of its own, aimed at nodes that do not exist: its
		// calls are sent and never answered but by this test.
		p := &producer{m: m, key: pkey{top.ID, 0}, topic: "t"}
		p.mu.leader, p.mu.epoch = 98, 1
		newCall := func() *call {
			c := &call{p: p, batch: encodeTestBatch(t, m), count: 1, acks: AcksAll, reqID: m.reqSeq.Add(1), done: make(chan struct{})}
			if err := p.submit(c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		twice := newCall()
		p.setLeader(99, 2) // a leader change: twice is sent again
		once := newCall()
		p.mu.Lock()
		if once.attempt != 1 || twice.attempt != 2 {
			t.Fatalf("attempts %d and %d, want 1 and 2", once.attempt, twice.attempt)
		}
		p.mu.Unlock()
		answerCall(p, once, 1, codeUnknownTopic, 0, 0, 0, 0)
		answerCall(p, twice, 2, codeUnknownTopic, 0, 0, 0, 0)
		<-once.done
		<-twice.done
		if !errors.Is(once.err, meta.ErrUnknownTopic) {
			t.Errorf("sent once, answered unknown topic: err = %v, want ErrUnknownTopic", once.err)
		}
		if errors.Is(twice.err, meta.ErrUnknownTopic) || !errors.Is(twice.err, ErrNotLeader) {
			t.Errorf("sent twice, answered unknown topic: err = %v, want ErrNotLeader (the first may be written)", twice.err)
		}
	})
}

// A resync whose State is at or past a topic's deletion still deletes it:
// a producer left for it (an Append that read the State before the
// deletion) is failed and dropped.
func TestResyncDeletesDeletedTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.nodes[1].meta.DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		m := c.nodes[2].rep
		c.waitFor("deletion applied on node 2", 30*time.Second, func() bool {
			_, ok := c.nodes[2].meta.State().Topic("t")
			return !ok && m.replica(pkey{top.ID, 0}) == nil
		})
		p := m.producerFor(top, 0) // as an Append that read the older State
		m.reconcileAll(c.nodes[2].meta.State())
		m.mu.RLock()
		left := m.mu.producers[pkey{top.ID, 0}]
		m.mu.RUnlock()
		if left != nil {
			t.Fatal("producer of a deleted topic kept by a resync")
		}
		p.mu.Lock()
		dead := p.mu.dead
		p.mu.Unlock()
		if !errors.Is(dead, meta.ErrUnknownTopic) {
			t.Fatalf("producer of a deleted topic: dead = %v, want ErrUnknownTopic", dead)
		}
	})
}

// encodeTestBatch encodes one record as m's Append does.
func encodeTestBatch(t *testing.T, m *Manager) []byte {
	t.Helper()
	h := log.BatchHeader{ProducerID: int64(m.cfg.ID), ProducerEpoch: m.producerEpoch()}
	b, err := log.EncodeBatch(nil, h, rec("x"), m.cfg.Clock())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A leader answers an append sent for an older leader epoch "not the
// leader", naming itself and its epoch, instead of taking it: its producer
// resends it at once as this epoch's, and it is written once. (A message
// delayed at an old leader that leads again must not be written behind
// batches sent to the leaders in between: see dedup.go.)
func TestLeaderRefusesAppendOfOlderEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		top := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		old := c.leader("t", 0)
		appendN(t, ctx, c, old, "a", 2)
		c.stop(old)
		l := c.waitNewLeader(old)
		m := c.nodes[l].rep
		part, _ := c.nodes[l].meta.State().Partition("t", 0)
		if part.LeaderEpoch < 1 {
			t.Fatalf("leader epoch %d after a leader change", part.LeaderEpoch)
		}
		// A producer of its own on the new leader, with the epoch before.
		p := &producer{m: m, key: pkey{top.ID, 0}, topic: "t"}
		p.mu.leader, p.mu.epoch = l, part.LeaderEpoch-1
		k := &call{p: p, batch: encodeTestBatch(t, m), count: 1, acks: AcksAll, reqID: m.reqSeq.Add(1), done: make(chan struct{})}
		if err := p.submit(k); err != nil {
			t.Fatal(err)
		}
		<-k.done
		if k.err != nil {
			t.Fatalf("append sent for the older epoch: %v", k.err)
		}
		p.mu.Lock()
		attempts, epoch := k.attempt, p.mu.epoch
		p.mu.Unlock()
		if attempts != 2 || epoch != part.LeaderEpoch {
			t.Fatalf("%d attempts, producer at epoch %d: want the first refused and the second, at epoch %d, taken",
				attempts, epoch, part.LeaderEpoch)
		}
		checkValues(t, values(c), append(names("a", 2), "x"))
	})
}
