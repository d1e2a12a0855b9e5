package meta

import "sync"

// offsetKey names one committed consumer offset.
type offsetKey struct {
	Group     string
	Topic     string
	Partition int32
}

// offsetTable holds committed consumer offsets. The apply loop writes it;
// readers take the read lock. It is not part of the immutable State because
// offsets change far more often than topics, and copying them on every
// commit would cost O(offsets).
//
// It also carries the dedup table, which only the apply loop touches, so
// that both travel together into snapshots.
type offsetTable struct {
	mu    sync.RWMutex
	m     map[offsetKey]int64
	dedup dedupTable // written by the apply loop under mu; read under mu
}

func newOffsetTable() *offsetTable {
	return &offsetTable{m: map[offsetKey]int64{}, dedup: dedupTable{}}
}

func (t *offsetTable) get(group, topic string, partition int32) (int64, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	o, ok := t.m[offsetKey{group, topic, partition}]
	return o, ok
}

func (t *offsetTable) set(group, topic string, partition int32, off int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[offsetKey{group, topic, partition}] = off
}

func (t *offsetTable) deleteTopic(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.m {
		if k.Topic == topic {
			delete(t.m, k)
		}
	}
}

// clone returns a deep copy, for a snapshot encoded off the apply loop.
// Called by the apply loop only.
func (t *offsetTable) clone() *offsetTable {
	c := &offsetTable{m: make(map[offsetKey]int64, len(t.m)), dedup: make(dedupTable, len(t.dedup))}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for k, v := range t.m {
		c.m[k] = v
	}
	for p, w := range t.dedup {
		nw := &seqWindow{max: w.max, seen: make(map[uint64]bool, len(w.seen))}
		for s := range w.seen {
			nw.seen[s] = true
		}
		c.dedup[p] = nw
	}
	return c
}
