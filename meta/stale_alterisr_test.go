package meta

import (
	"errors"
	"slices"
	"testing"
)

// An AlterISR of a deleted topic, committed late (proposals are retried
// until the caller's ctx ends), must not apply to a new topic of the same
// name whose leader and epochs happen to match: the command carries its
// topic's ID. Applied, it would put a lagging replica back into the new
// topic's ISR, which could then elect it.
func TestStaleAlterISRSparesRecreatedTopic(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	cfg := &TopicConfig{Partitions: 1}
	f.ok(&command{Op: opCreateTopic, Topic: "x", Config: cfg})
	old := f.part("x", 0)
	oldID, _ := f.s.Topic("x")
	if old.Leader != 1 {
		t.Fatalf("placement: %+v", old)
	}
	// Old x: leader 1 drops 3, later asks to add it back (in flight).
	f.ok(&command{Op: opAlterISR, From: 1, Topic: "x", TopicID: oldID.ID, LeaderEpoch: 0, PartitionEpoch: 0, ISR: []uint64{1, 2}})
	stale := &command{Op: opAlterISR, From: 1, Topic: "x", TopicID: oldID.ID, LeaderEpoch: 0, PartitionEpoch: 1, ISR: []uint64{1, 2, 3}}
	// x is deleted and made again (two other topics in between: same placement).
	f.ok(&command{Op: opDeleteTopic, Topic: "x"})
	f.ok(&command{Op: opCreateTopic, Topic: "y", Config: cfg})
	f.ok(&command{Op: opCreateTopic, Topic: "z", Config: cfg})
	f.ok(&command{Op: opCreateTopic, Topic: "x", Config: cfg})
	newID, _ := f.s.Topic("x")
	if newID.ID == oldID.ID {
		t.Fatal("same topic ID")
	}
	// New x: 3 lags and leaves the ISR.
	f.ok(&command{Op: opAlterISR, From: 1, Topic: "x", TopicID: newID.ID, LeaderEpoch: 0, PartitionEpoch: 0, ISR: []uint64{1, 2}})
	// The old request commits now.
	r := f.do(stale)
	p := f.part("x", 0)
	if !errors.Is(r.err, ErrUnknownTopic) {
		t.Errorf("stale AlterISR: %v, want ErrUnknownTopic", r.err)
	}
	if slices.Contains(p.ISR, 3) {
		// Leaders 1 and 2 fail: 3, which never caught up on the new x, leads.
		f.ok(&command{Op: opFence, Node: 1, Incarnation: f.inc(1)})
		f.ok(&command{Op: opFence, Node: 2, Incarnation: f.inc(2)})
		t.Fatalf("a deleted topic's AlterISR changed its successor's ISR; after fencing 1 and 2: %+v", f.part("x", 0))
	}
}
