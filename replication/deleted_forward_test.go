package replication

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
)

// answerTap passes a node's forwarding messages on, and hands the answers
// to forwarded appends and reads it sees to a channel.
type answerTap struct {
	inner Sender
	mu    sync.Mutex
	out   chan tapped
}

// tapped is an answer to a forwarded call.
type tapped struct {
	reqID uint64
	code  byte
}

func (a *answerTap) Send(to uint64, msg []byte) error {
	a.mu.Lock()
	out := a.out
	a.mu.Unlock()
	if out != nil && len(msg) > 1 {
		_ = forEachItem(msg[1:], func(kind byte, body []byte) error {
			var a appendResp
			var r readResp
			switch {
			case kind == kindAppendResp && decodeAppendResp(body, &a) == nil:
				out <- tapped{a.reqID, a.code}
			case kind == kindReadResp && decodeReadResp(body, &r) == nil:
				out <- tapped{r.reqID, r.code}
			}
			return nil
		})
	}
	return a.inner.Send(to, msg)
}

// A forwarded append that reaches a replica after this node's metadata
// deleted its topic, but before the deletion's event dropped the replica,
// is refused as for an unknown topic, not written: the sender's metadata
// lags, and the topic may exist again under its name. So is a forwarded
// read.
func TestForwardedAppendToDeletedTopicRefused(t *testing.T) {
	taps := map[uint64]*answerTap{}
	c := newTCluster(t, 3, func(id uint64, cfg *Config) {
		taps[id] = &answerTap{inner: cfg.Forward}
		cfg.Forward = taps[id]
	})
	topic := c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 1})
	l := c.leader("t", 0)
	var other uint64
	for _, id := range c.ids {
		if id != l {
			other = id
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("a"), AcksAll); err != nil {
		t.Fatal(err)
	}
	m := c.nodes[l].rep
	m.dirMu.Lock() // the deletion's event waits here, before it drops the replica
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			m.dirMu.Unlock()
		}
	}
	defer unlock()
	if err := c.nodes[other].meta.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if m.replica(pkey{topic.ID, 0}) == nil {
		t.Fatal("the replica was dropped already: the test's premise does not hold")
	}
	out := forwardAppendAndRead(t, m, taps[l], other, topic.ID)
	for range 2 {
		select {
		case a := <-out:
			if a.reqID != 77 && a.reqID != 78 || a.code != codeUnknownTopic {
				t.Errorf("answer %+v, want requests 77 (append) and 78 (read) refused with code %d (unknown topic)", a, codeUnknownTopic)
			}
		case <-ctx.Done():
			t.Fatal("no answer to the forwarded append or read")
		}
	}
	unlock()
}

// forwardAppendAndRead hands node m a forwarded append (request 77) and a
// forwarded read (78) of topic id's partition 0, as from node from, and
// returns the channel on which tap, m's forwarding sender, passes the
// answers on.
func forwardAppendAndRead(t *testing.T, m *Manager, tap *answerTap, from, id uint64) <-chan tapped {
	t.Helper()
	out := make(chan tapped, 4)
	tap.mu.Lock()
	tap.out = out
	tap.mu.Unlock()
	batch, err := log.EncodeBatch(nil, log.BatchHeader{ProducerID: int64(from), ProducerEpoch: 1}, rec("late"), time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	m.HandleForward(from, message(appendAppend(nil, &appendItem{reqID: 77, attempt: 1, topicID: id, acks: AcksLeader, batch: batch})))
	m.HandleForward(from, message(appendRead(nil, &readItem{reqID: 78, topicID: id, offset: 0, maxBytes: 1 << 20, maxRecords: 5})))
	return out
}
