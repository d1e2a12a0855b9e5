package meta

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// snapshotVersion is the first byte of an encoded state-machine snapshot.
const snapshotVersion = 1

// snapshotBody is the encoded form of a State and the offset table. Every
// collection is sorted, so equal states encode to equal bytes.
type snapshotBody struct {
	Index   uint64        `json:"index"`
	Created uint64        `json:"created"`
	Nodes   []NodeInfo    `json:"nodes"`
	Topics  []*Topic      `json:"topics"`
	Offsets []offsetEntry `json:"offsets"`
	Dedup   []dedupEntry  `json:"dedup"`
}

type offsetEntry struct {
	Group     string `json:"g"`
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
	Offset    int64  `json:"o"`
}

// encodeSnapshot returns the snapshot form of s and offs:
//
//	+---------+------------------------------------------------+
//	| version | JSON {index, created, nodes, topics, offsets,  |
//	|         |       dedup}                                   |
//	+---------+------------------------------------------------+
//	   1 B      every list sorted: byte-identical for equal states
func encodeSnapshot(s *State, offs *offsetTable) []byte {
	body := snapshotBody{Index: s.index, Created: s.created, Nodes: s.Nodes(), Topics: s.Topics()}
	offs.mu.RLock()
	for k, o := range offs.m {
		body.Offsets = append(body.Offsets, offsetEntry{k.Group, k.Topic, k.Partition, o})
	}
	body.Dedup = offs.dedup.entries()
	offs.mu.RUnlock()
	slices.SortFunc(body.Offsets, func(a, b offsetEntry) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("meta: state does not encode: %v", err)) // plain structs: cannot happen
	}
	return append([]byte{snapshotVersion}, b...)
}

// decodeSnapshot parses what encodeSnapshot produced.
func decodeSnapshot(b []byte) (*State, *offsetTable, error) {
	if len(b) < 2 || b[0] != snapshotVersion {
		return nil, nil, fmt.Errorf("%w: snapshot of %d bytes", ErrCorrupt, len(b))
	}
	var body snapshotBody
	if err := json.Unmarshal(b[1:], &body); err != nil {
		return nil, nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	s := emptyState()
	s.index, s.created = body.Index, body.Created
	for _, n := range body.Nodes {
		if n.ID == 0 {
			return nil, nil, fmt.Errorf("%w: snapshot: node 0", ErrCorrupt)
		}
		s.nodes[n.ID] = n
	}
	a := applier{next: s}
	for _, t := range body.Topics {
		if t == nil || ValidTopicName(t.Name) != nil {
			return nil, nil, fmt.Errorf("%w: snapshot: bad topic", ErrCorrupt)
		}
		for i, p := range t.Partitions {
			if p.Partition != int32(i) || len(p.Replicas) == 0 {
				return nil, nil, fmt.Errorf("%w: snapshot: topic %q partition %d at %d", ErrCorrupt, t.Name, p.Partition, i)
			}
		}
		if _, dup := s.topics.get(t.Name); dup {
			return nil, nil, fmt.Errorf("%w: snapshot: topic %q twice", ErrCorrupt, t.Name)
		}
		a.putTopic(t.Name, t)
	}
	offs := newOffsetTable()
	for _, o := range body.Offsets {
		offs.m[offsetKey{o.Group, o.Topic, o.Partition}] = o.Offset
	}
	offs.dedup = dedupFrom(body.Dedup)
	return s, offs, nil
}
