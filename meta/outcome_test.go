package meta

import (
	"errors"
	"testing"
)

// A command a snapshot shows applied gets the result the state after it
// tells: what it asked for holds, or (an ISR change) it is stale, or the
// outcome is unknown.
func TestSnapshotOutcome(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 2}})
	f.ok(&command{Op: opDrain, Node: 2, Incarnation: f.inc(2), Flag: true})
	f.ok(&command{Op: opCommitOffset, Group: "g", Topic: "t", Partition: 1, Offset: 9})
	tp, _ := f.s.Topic("t")
	created := tp.Config // defaults filled, as the root package sends them
	p := f.part("t", 0)
	shrunk := []uint64{p.Leader}
	f.ok(&command{Op: opAlterISR, From: p.Leader, Topic: "t", Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: shrunk})
	p = f.part("t", 0)
	for _, c := range []struct {
		name string
		cmd  command
		ok   bool
		err  error
	}{
		{"created", command{Op: opCreateTopic, Topic: "t", Config: &created}, true, nil},
		{"created by another", command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 5}}, false, errOutcomeUnknown},
		{"created by another, other RF", command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 2, ReplicationFactor: 1}}, false, errOutcomeUnknown},
		{"not created", command{Op: opCreateTopic, Topic: "u", Config: &TopicConfig{Partitions: 2}}, false, errOutcomeUnknown},
		{"deleted", command{Op: opDeleteTopic, Topic: "u"}, true, nil},
		{"not deleted", command{Op: opDeleteTopic, Topic: "t"}, false, errOutcomeUnknown},
		{"isr as asked", command{Op: opAlterISR, Topic: "t", Partition: 0, LeaderEpoch: p.LeaderEpoch, ISR: shrunk}, true, nil},
		{"isr otherwise", command{Op: opAlterISR, Topic: "t", Partition: 0, LeaderEpoch: p.LeaderEpoch, ISR: []uint64{1, 2, 3}}, false, ErrStaleEpoch},
		{"drained", command{Op: opDrain, Node: 2, Incarnation: f.inc(2), Flag: true}, true, nil},
		{"not drained", command{Op: opDrain, Node: 3, Incarnation: f.inc(3), Flag: true}, false, errOutcomeUnknown},
		{"healthy", command{Op: opSetUnhealthy, Node: 3, Incarnation: f.inc(3), Flag: false}, true, nil},
		{"offset", command{Op: opCommitOffset, Group: "g", Topic: "t", Partition: 1, Offset: 9}, true, nil},
		{"offset overwritten", command{Op: opCommitOffset, Group: "g", Topic: "t", Partition: 1, Offset: 8}, false, errOutcomeUnknown},
	} {
		r := snapshotOutcome(&c.cmd, f.s, f.offs)
		if c.ok && r.err != nil || !c.ok && !errors.Is(r.err, c.err) {
			t.Errorf("%s: %v, want ok %v / %v", c.name, r.err, c.ok, c.err)
		}
		if c.name == "created" && (r.topic == nil || r.topic.Name != "t") {
			t.Errorf("created: topic %+v", r.topic)
		}
		if c.name == "isr as asked" && !sameMembers(r.part.ISR, shrunk) {
			t.Errorf("isr as asked: partition %+v", r.part)
		}
	}
}

// A duplicate command whose waiter is still there (its first copy was
// applied where this node did not see it, or it is too old to tell) is
// answered from the state instead of left to wait for its ctx; a command
// of an earlier Open (another nonce) answers no waiter.
func TestDuplicateAnswersWaiter(t *testing.T) {
	n := &Node{cfg: Config{ID: 1}}
	f := newFSM(t, 1, 2, 3)
	n.state.Store(f.s)
	n.offsets.Store(f.offs)
	d := &n.d
	d.n, d.nonce, d.waiters = n, 77, map[uint64]*proposal{}
	commit := func(index uint64, c *command) {
		d.applyCommand(index, encodeCommand(c))
	}
	wait := func(seq uint64) *proposal {
		p := &proposal{resp: make(chan result, 1)}
		d.waiters[seq] = p
		return p
	}
	drain := &command{Op: opDrain, Node: 2, Incarnation: f.inc(2), Flag: true, From: 1, Session: 77}

	// Applied once unseen (seq 5 marked seen), then its retry arrives.
	drain.Seq = 5
	f.ok(&command{Op: opDrain, Node: 2, Incarnation: f.inc(2), Flag: true})
	f.offs.dedup.seen(proposer{1, 77}, 5)
	n.state.Store(f.s)
	p := wait(5)
	commit(100, drain)
	select {
	case r := <-p.resp:
		if r.err != nil {
			t.Fatalf("duplicate drain, applied: %v", r.err)
		}
	default:
		t.Fatal("a duplicate left its waiter waiting")
	}

	// Another Open's command with the same sequence answers nothing.
	q := wait(6)
	old := *drain
	old.Seq, old.Session = 6, 76
	commit(101, &old)
	select {
	case r := <-q.resp:
		t.Fatalf("a command of an earlier Open answered a waiter: %+v", r)
	default:
	}
}
