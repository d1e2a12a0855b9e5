package replication

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// readBlockFS blocks ReadAt on the files whose name holds match while
// blocked, as a disk that stops answering reads would; blocked is closed
// when a read first blocks.
type readBlockFS struct {
	wal.FS
	match   string
	mu      sync.Mutex
	on      bool
	blocked chan struct{}
	release chan struct{}
}

func (b *readBlockFS) wrap(name string, f wal.File, err error) (wal.File, error) {
	if err != nil || !strings.Contains(name, b.match) {
		return f, err
	}
	return &readBlockFile{File: f, fs: b}, nil
}

func (b *readBlockFS) Create(name string) (wal.File, error) {
	f, err := b.FS.Create(name)
	return b.wrap(name, f, err)
}

func (b *readBlockFS) OpenReadWrite(name string) (wal.File, error) {
	f, err := b.FS.OpenReadWrite(name)
	return b.wrap(name, f, err)
}

func (b *readBlockFS) block() {
	b.mu.Lock()
	b.on = true
	b.mu.Unlock()
}

func (b *readBlockFS) unblock() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.on {
		b.on = false
		close(b.release)
	}
}

type readBlockFile struct {
	wal.File
	fs *readBlockFS
}

func (f *readBlockFile) ReadAt(p []byte, off int64) (int, error) {
	b := f.fs
	b.mu.Lock()
	on := b.on
	if on {
		select {
		case <-b.blocked:
		default:
			close(b.blocked)
		}
	}
	b.mu.Unlock()
	if on {
		<-b.release
	}
	return f.File.ReadAt(p, off)
}

// A read hung on the disk (reads have no deadline) holds up the retention
// of its replica, and only that: the node's timer (retransmissions, ISR
// changes, producer resends, for every partition) goes on. Retention ran
// on the timer's goroutine.
func TestHungReadLeavesTimerRunning(t *testing.T) {
	blockers := map[uint64]*readBlockFS{}
	c := newTCluster(t, 3, func(id uint64, cfg *Config) {
		b := &readBlockFS{FS: cfg.FS, match: "/r-", blocked: make(chan struct{}), release: make(chan struct{})}
		blockers[id] = b
		cfg.FS = b
	})
	t.Cleanup(func() {
		for _, b := range blockers {
			b.unblock()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.createTopic("r", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, RetentionBytes: 1 << 20})
	l := c.leader("r", 0)
	if _, _, err := c.nodes[l].rep.Append(ctx, "r", 0, rec("r0"), AcksAll); err != nil {
		t.Fatal(err)
	}
	b := blockers[l]
	b.block()
	go func() { _, _ = c.nodes[l].rep.Read(ctx, "r", 0, 0, ReadOptions{}) }()
	select {
	case <-b.blocked:
	case <-ctx.Done():
		t.Fatal("the read never reached the disk")
	}
	ticked := make(chan struct{})
	go func() {
		c.nodes[l].rep.tick(true) // a tick that enforces retention
		close(ticked)
	}()
	select {
	case <-ticked:
	case <-time.After(10 * time.Second):
		t.Fatal("the node's timer waits for the retention of a replica whose read hangs")
	}
	b.unblock()
}
