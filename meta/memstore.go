package meta

import (
	"fmt"
	"sync"
)

// MemStore is an in-memory raft log and snapshot that outlives a Node:
// pass the same MemStore to the next Open (Config.MemStore, Dir "") to
// restart a node with its state, as from disk, without a disk. For tests
// and in-memory clusters (LocalCluster). One Node at a time may use it.
type MemStore struct {
	mu    sync.Mutex
	st    *storage
	inUse bool
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	st, _ := openStorage("") // in memory: cannot fail
	return &MemStore{st: st}
}

// acquire hands the store to one Node.
func (m *MemStore) acquire() (*storage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inUse {
		return nil, fmt.Errorf("%w: MemStore is in use by another Node", ErrInvalidArgument)
	}
	m.inUse = true
	return m.st, nil
}

func (m *MemStore) release() {
	m.mu.Lock()
	m.inUse = false
	m.mu.Unlock()
}
