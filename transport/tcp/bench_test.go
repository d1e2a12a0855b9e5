package tcp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/replog/replog/transport"
)

var benchSizes = []int{100, 64 << 10}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkTCP: node 1 sends to node 2 over loopback, one connection. The
// sender sends one read-only buffer over and over (nobody writes to it); it
// keeps a window of messages in flight below the queue's bounds, so every
// message is delivered. The
// receiver allocates each message, as the Handler contract requires.
func BenchmarkTCP(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			ln1, ln2 := listenB(b), listenB(b)
			peers := map[uint64]string{1: ln1.Addr().String(), 2: ln2.Addr().String()}
			quiet := slog.New(slog.DiscardHandler)
			t1, err := New(Config{ID: 1, Listener: ln1, Peers: peers, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer t1.Close()
			t2, err := New(Config{ID: 2, Listener: ln2, Peers: peers, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer t2.Close()
			fl := newFlow(tcpWindow(size))
			var warmed atomic.Bool
			want := int64(b.N)
			warm, done := make(chan struct{}), make(chan struct{})
			if err := t1.Start(func(uint64, []byte) {}); err != nil {
				b.Fatal(err)
			}
			if err := t2.Start(func(uint64, []byte) {
				if !warmed.Load() { // the first message warms the connection up
					warmed.Store(true)
					close(warm)
				} else if fl.received() == want {
					close(done)
				}
			}); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, size)
			if err := t1.Send(2, msg); err != nil {
				b.Fatal(err)
			}
			<-warm
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range int64(b.N) {
				fl.wait(i)
				for {
					err := t1.Send(2, msg)
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

// BenchmarkBaselineIOCopy is the yardstick for BenchmarkTCP: the same bytes
// through one loopback TCP connection with plain io.Copy at both ends, no
// framing, no checksums, no per-message buffers.
func BenchmarkBaselineIOCopy(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			ln := listenB(b)
			defer ln.Close()
			recvd := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					recvd <- -1
					return
				}
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				recvd <- n
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			total := int64(b.N) * int64(size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			if _, err := io.Copy(c, io.LimitReader(zeros{}, total)); err != nil {
				b.Fatal(err)
			}
			c.Close()
			if n := <-recvd; n != total {
				b.Fatalf("received %d of %d bytes", n, total)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkBaselineAllocating is BenchmarkBaselineIOCopy with one change:
// the receiver reads each message into a buffer of its own, as a Handler
// that owns its messages requires. It isolates what that allocation costs
// (mostly garbage collection), apart from framing and checksums. 64 KiB
// only: at 100 B it would measure unbuffered reads.
func BenchmarkBaselineAllocating(b *testing.B) {
	for _, size := range benchSizes[1:] {
		b.Run(sizeName(size), func(b *testing.B) {
			ln := listenB(b)
			defer ln.Close()
			recvd := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					recvd <- -1
					return
				}
				defer c.Close()
				var n int64
				for {
					m := make([]byte, size)
					k, err := io.ReadFull(c, m)
					n += int64(k)
					if err != nil {
						recvd <- n
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			total := int64(b.N) * int64(size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			if _, err := io.Copy(c, io.LimitReader(zeros{}, total)); err != nil {
				b.Fatal(err)
			}
			c.Close()
			if n := <-recvd; n != total {
				b.Fatalf("received %d of %d bytes", n, total)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func listenB(b *testing.B) net.Listener {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
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

// tcpWindow is the benchmark's window: within the default queue bounds.
func tcpWindow(size int) int64 {
	return int64(min(DefaultQueueLen, DefaultQueueBytes/size/2))
}
