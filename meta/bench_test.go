package meta

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchCluster starts a 3-node in-memory group in real time and waits
// until it is ready.
func benchCluster(b *testing.B) (*cluster, *Node, *Node) {
	c := newClusterWith(b, []uint64{1, 2, 3}, false, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	for _, id := range c.peers {
		c.start(id)
	}
	ctx := ctxT(b, 30*time.Second)
	if err := c.nodes[1].Barrier(ctx); err != nil {
		b.Fatal(err)
	}
	l := c.nodes[c.nodes[1].Controller()]
	c.ready(ctx, l)
	var f *Node
	for _, n := range c.nodes {
		if n != l {
			f = n
		}
	}
	return c, l, f
}

// BenchmarkTopicLookup: a local metadata read. State/* is the lock-free
// lookup on the immutable snapshot; Topic/* is the lease-checked read
// (lease valid: no round trip). Baseline/RWMutexMap is the same map lookup
// behind a sync.RWMutex.
func BenchmarkTopicLookup(b *testing.B) {
	c, l, f := benchCluster(b)
	ctx := ctxT(b, 30*time.Second)
	for i := range 100 {
		if _, err := l.CreateTopic(ctx, fmt.Sprint("topic-", i), TopicConfig{Partitions: 4}); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Barrier(ctx); err != nil {
		b.Fatal(err)
	}
	_ = c
	for _, tc := range []struct {
		name string
		n    *Node
	}{{"leader", l}, {"follower", f}} {
		b.Run("State/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := tc.n.State().Topic("topic-42"); !ok {
					b.Fatal("missing")
				}
			}
		})
		b.Run("Topic/"+tc.name, func(b *testing.B) {
			if !tc.n.leaseValid() {
				b.Skip("no lease")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.n.Topic(ctx, "topic-42"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Baseline/RWMutexMap", func(b *testing.B) {
		var mu sync.RWMutex
		m := map[string]*Topic{}
		for _, t := range l.State().Topics() {
			m[t.Name] = t
		}
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			_, ok := m["topic-42"]
			mu.RUnlock()
			if !ok {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkCreateTopic: latency of CreateTopic (3 partitions, RF 3)
// through the leader and through a follower of a 3-node group holding 100
// other topics; each topic is deleted again after its creation is timed,
// so the state does not grow. Reports p50, p99 and max of the creations.
func BenchmarkCreateTopic(b *testing.B) {
	_, l, f := benchCluster(b)
	ctx := ctxT(b, 5*time.Minute)
	for i := range 100 {
		if _, err := l.CreateTopic(ctx, fmt.Sprint("base-", i), TopicConfig{Partitions: 4}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0 // topic names stay unique over every run of the sub-benchmarks
	for _, tc := range []struct {
		name string
		n    *Node
	}{{"leader", l}, {"follower", f}} {
		b.Run(tc.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				name := fmt.Sprint("topic-", i)
				i++
				start := time.Now()
				if _, err := tc.n.CreateTopic(ctx, name, TopicConfig{Partitions: 3}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if err := tc.n.DeleteTopic(ctx, name); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}

// BenchmarkProposals: 64 concurrent proposers (offset commits, spread over
// the three nodes); reports committed proposals per second.
func BenchmarkProposals(b *testing.B) {
	c, l, _ := benchCluster(b)
	ctx := ctxT(b, 2*time.Minute)
	if _, err := l.CreateTopic(ctx, "t", TopicConfig{Partitions: 64}); err != nil {
		b.Fatal(err)
	}
	for _, n := range c.nodes {
		if err := n.Barrier(ctx); err != nil {
			b.Fatal(err)
		}
	}
	nodes := []*Node{c.nodes[1], c.nodes[2], c.nodes[3]}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			n := nodes[g%3]
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := n.CommitOffset(ctx, "g", "t", int32(g), i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "proposals/s")
}

// BenchmarkIdleCPU measures the CPU time (user+system, whole process) an
// idle 3-node group uses over 10 s, as a percentage of one core. Opt-in:
// go test -run XXX -bench IdleCPU ./meta/
func BenchmarkIdleCPU(b *testing.B) {
	c, _, _ := benchCluster(b)
	_ = c
	for b.Loop() {
		before := cpuTime(b)
		wall := time.Now()
		time.Sleep(10 * time.Second) // measuring an idle period, not synchronising
		used := cpuTime(b) - before
		b.ReportMetric(100*used.Seconds()/time.Since(wall).Seconds(), "%core")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
