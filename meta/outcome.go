package meta

import (
	"errors"
	"fmt"
	"slices"
)

// errOutcomeUnknown answers a proposal that a snapshot shows applied but
// whose outcome the state cannot tell (see snapshotOutcome).
var errOutcomeUnknown = errors.New("meta: proposal applied while this node caught up from a snapshot; its outcome is unknown")

// answerFromSnapshot answers the waiters of this Open whose commands the
// restored dedup table shows applied: the node skipped their entries,
// received in the snapshot instead, and their retries would be skipped as
// duplicates, so without this they would wait for their ctx to end.
func (d *driver) answerFromSnapshot(s *State, offs *offsetTable) {
	w := offs.dedup[proposer{d.n.cfg.ID, d.nonce}]
	if w == nil {
		return
	}
	for seq, p := range d.waiters {
		if seq+dedupWindow <= w.max || w.seen[seq] {
			delete(d.waiters, seq)
			res := snapshotOutcome(p.cmd, s, offs)
			res.index = d.applied
			p.resp <- res
		}
	}
}

// snapshotOutcome is the result of an applied command as the state after
// it shows it: what the caller asked for holds (the topic exists, the flag
// is set, the ISR is the one asked for) or, for an ISR change, it does not
// (ErrStaleEpoch: the leader asks again from the new record). Where the
// state cannot tell, errOutcomeUnknown, as for a ctx that ended.
func snapshotOutcome(c *command, s *State, offs *offsetTable) result {
	switch c.Op {
	case opCreateTopic:
		// A topic of that name with the very configuration asked for:
		// created by this command, or by another asking the same, which
		// leaves the caller where it wanted to be.
		if t, ok := s.Topic(c.Topic); ok && c.Config != nil && t.Config == *c.Config {
			return result{topic: t}
		}
	case opDeleteTopic:
		if _, ok := s.Topic(c.Topic); !ok {
			return result{}
		}
	case opAlterISR:
		p, ok := s.Partition(c.Topic, c.Partition)
		if !ok {
			break
		}
		if p.LeaderEpoch == c.LeaderEpoch && sameMembers(p.ISR, c.ISR) {
			return result{part: *p}
		}
		return result{err: fmt.Errorf("%w: %s/%d is at leader epoch %d, partition epoch %d",
			ErrStaleEpoch, c.Topic, c.Partition, p.LeaderEpoch, p.PartitionEpoch)}
	case opDrain, opSetUnhealthy:
		n, ok := s.Node(c.Node)
		if ok && n.Incarnation == c.Incarnation && (c.Op == opDrain && n.Draining == c.Flag || c.Op == opSetUnhealthy && n.Unhealthy == c.Flag) {
			return result{}
		}
	case opCommitOffset:
		if o, ok := offs.get(c.Group, c.Topic, c.Partition); ok && o == c.Offset {
			return result{}
		}
	}
	return result{err: errOutcomeUnknown}
}

// sameMembers reports whether a and b hold the same node IDs.
func sameMembers(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
