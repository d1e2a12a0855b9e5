package transporttest

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
)

// Recorder collects the messages one node receives. Each message's first
// eight bytes are a big-endian sequence number, which is all it keeps.
type Recorder struct {
	mu   sync.Mutex
	got  map[uint64][]uint64 // sender -> sequence numbers, in arrival order
	cond chan struct{}       // closed and replaced on every delivery
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{got: make(map[uint64][]uint64), cond: make(chan struct{})}
}

// Handle is a transport.Handler that records msg's sequence number.
func (r *Recorder) Handle(from uint64, msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[from] = append(r.got[from], binary.BigEndian.Uint64(msg))
	close(r.cond)
	r.cond = make(chan struct{})
}

// Seqs returns a copy of the sequence numbers that arrived from sender, in
// arrival order.
func (r *Recorder) Seqs(from uint64) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[from])
}

// WaitFor waits until the last message from sender carries seq, or ctx ends.
func (r *Recorder) WaitFor(ctx context.Context, from, seq uint64) error {
	err := r.wait(ctx, from, func(s []uint64) bool { return len(s) > 0 && s[len(s)-1] == seq })
	if err != nil {
		return fmt.Errorf("waiting for %d from %d: %w", seq, from, err)
	}
	return nil
}

// WaitCount waits until at least n messages from sender have arrived, or
// ctx ends.
func (r *Recorder) WaitCount(ctx context.Context, from uint64, n int) error {
	err := r.wait(ctx, from, func(s []uint64) bool { return len(s) >= n })
	if err != nil {
		return fmt.Errorf("waiting for %d messages from %d: %w", n, from, err)
	}
	return nil
}

// wait waits until done holds for the sequence numbers from sender (ctx's
// error if it ends first). done runs under the Recorder's lock.
func (r *Recorder) wait(ctx context.Context, from uint64, done func([]uint64) bool) error {
	for {
		r.mu.Lock()
		ok := done(r.got[from])
		c := r.cond
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
