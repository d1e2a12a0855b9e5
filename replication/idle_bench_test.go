//go:build unix

package replication

import (
	"syscall"
	"testing"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// BenchmarkIdle reports the CPU an idle 3-node cluster with 1,000
// partitions (RF 3) uses, in percent of one core, over one second per
// iteration: the Manager's tick, meta's heartbeats, nothing else.
func BenchmarkIdle(b *testing.B) {
	c := &tcluster{t: b, nodes: map[uint64]*tnode{}, mem: map[uint64]*meta.MemStore{}, fs: map[uint64]wal.FS{}}
	c.net = transport.NewMemNetwork(1)
	for i := 1; i <= 3; i++ {
		c.ids = append(c.ids, uint64(i))
	}
	for _, id := range c.ids {
		c.mem[id] = meta.NewMemStore()
		c.fs[id] = wal.NewMemFS()
		c.start(id)
	}
	b.Cleanup(c.close)
	c.createTopic("idle", meta.TopicConfig{Partitions: 1000, ReplicationFactor: 3})
	time.Sleep(2 * time.Second) // let elections and ISR settle
	b.ResetTimer()
	var used time.Duration
	for range b.N {
		before := cpuTime()
		time.Sleep(time.Second)
		used += cpuTime() - before
	}
	b.ReportMetric(100*used.Seconds()/float64(b.N), "%cpu")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
