package transport_test

import (
	"errors"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/replog/replog/transport"
)

// BenchmarkMemNetwork: one sender to one receiver on a healthy link. The
// sender sends one read-only buffer over and over (nobody writes to it);
// it keeps a window of messages in flight below the link's queue bound, so
// every message is delivered.
func BenchmarkMemNetwork(b *testing.B) {
	for _, size := range []int{100, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			net := transport.NewMemNetwork(1)
			defer net.Close()
			a, r := net.Endpoint(1), net.Endpoint(2)
			fl := newFlow(memWindow(size))
			done := make(chan struct{})
			want := int64(b.N)
			if err := a.Start(func(uint64, []byte) {}); err != nil {
				b.Fatal(err)
			}
			if err := r.Start(func(uint64, []byte) {
				if fl.received() == want {
					close(done)
				}
			}); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range int64(b.N) {
				fl.wait(i)
				for {
					err := a.Send(2, msg)
					if err == nil {
						break
					}
					if !errors.Is(err, transport.ErrQueueFull) {
						b.Fatal(err)
					}
					runtime.Gosched()
				}
			}
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// flow keeps at most window messages in flight, as a sender with flow
// control of its own would, rather than spinning on a full queue.
type flow struct {
	window int64
	got    atomic.Int64  // messages received
	credit chan struct{} // capacity 1: the receiver made room
}

func newFlow(window int64) *flow { return &flow{window: window, credit: make(chan struct{}, 1)} }

// received counts one message and returns the count.
func (f *flow) received() int64 {
	n := f.got.Add(1)
	if n%(f.window/4) == 0 {
		select {
		case f.credit <- struct{}{}:
		default:
		}
	}
	return n
}

// wait returns once fewer than window of the first sent messages are in flight.
func (f *flow) wait(sent int64) {
	for sent-f.got.Load() >= f.window {
		<-f.credit
	}
}

// memWindow is the benchmark's window: within MemQueueLen and MemQueueBytes.
func memWindow(size int) int64 {
	return int64(min(transport.MemQueueLen, transport.MemQueueBytes/size/2))
}
