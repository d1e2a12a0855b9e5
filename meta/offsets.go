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
	dedup dedupTable // apply loop only; not under mu
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
