package replication

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// benchCluster starts 3 nodes on disk (the OS file system, SyncAlways)
// with a topic of 6 partitions, RF 3.
func benchCluster(b *testing.B, durability wal.Durability) (*tcluster, *meta.Topic) {
	c := &tcluster{t: b, dir: b.TempDir(), nodes: map[uint64]*tnode{}, mem: map[uint64]*meta.MemStore{},
		fs: map[uint64]wal.FS{}, cfg: func(id uint64, cfg *Config) { cfg.Durability = durability }}
	c.net = transport.NewMemNetwork(1)
	for i := 1; i <= 3; i++ {
		c.ids = append(c.ids, uint64(i))
	}
	for _, id := range c.ids {
		c.mem[id] = meta.NewMemStore()
		c.fs[id] = wal.OSFS{}
		c.start(id)
	}
	b.Cleanup(c.close)
	t := c.createTopic("bench", meta.TopicConfig{Partitions: 6, ReplicationFactor: 3})
	return c, t
}

// runProducers runs producers appending batches of batch records of size
// bytes to the topic's partitions, through the leader (forward false) or
// a node that is not the leader, for b.N batches in all.
func runProducers(b *testing.B, c *tcluster, t *meta.Topic, producers, batch, size int, forward bool) {
	recs := make([]log.Record, batch)
	for i := range recs {
		recs[i].Value = make([]byte, size)
	}
	var next, latSum atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := int32(p % len(t.Partitions))
			leader := c.leader("bench", part)
			via := leader
			if forward {
				via = c.other(leader)
			}
			n := c.nodes[via].rep
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				_, _, err := n.Append(ctx, "bench", part, recs, AcksAll)
				latSum.Add(int64(time.Since(t0)))
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "records/s")
	b.ReportMetric(float64(latSum.Load())/float64(b.N)/1e3, "µs/append-avg")
	var queued, batches, hw, hwn, pushWait, pushes int64
	for _, id := range c.ids {
		st := &c.nodes[id].rep.stats
		queued, batches = queued+st.queueNanos.Load(), batches+st.leaderBatches.Load()
		hw, hwn = hw+st.hwNanos.Load(), hwn+st.hwBatches.Load()
		pushWait, pushes = pushWait+st.pushWaitNanos.Load(), pushes+st.followerPushes.Load()
	}
	b.Logf("a batch waited %v for its leader round; an AcksAll batch then %v for the high watermark after the round's write; a push waited %v on its follower before its append",
		time.Duration(queued/max(batches, 1)), time.Duration(hw/max(hwn, 1)), time.Duration(pushWait/max(pushes, 1)))
	for _, id := range c.ids {
		st := &c.nodes[id].rep.stats
		lr, fr := max(st.leaderRounds.Load(), 1), max(st.followerRounds.Load(), 1)
		b.Logf("node %d: leader rounds %d, %.1f batches and %v each; follower rounds %d, %.1f pushes and %v each", id,
			lr, float64(st.leaderBatches.Load())/float64(lr), time.Duration(st.leaderNanos.Load()/lr),
			fr, float64(st.followerPushes.Load())/float64(fr), time.Duration(st.followerNanos.Load()/fr))
	}
	var syncs, writes int64
	for _, id := range c.ids {
		n := c.nodes[id].rep
		n.mu.RLock()
		rs := slices.Collect(maps.Values(n.mu.replicas))
		n.mu.RUnlock()
		for _, r := range rs {
			st := r.log.WALStats()
			syncs, writes = syncs+st.Syncs, writes+st.Writes
		}
	}
	b.ReportMetric(float64(syncs)/el.Seconds(), "syncs/s")
	b.ReportMetric(float64(b.N*batch)/float64(max(syncs, 1)), "records/sync")
	if st := c.net.Stats(); st.Dropped() > 0 {
		b.Logf("network dropped %d of %d messages: %+v", st.Dropped(), st.Sent, st)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name                   string
		producers, batch, size int
		forward                bool
		durability             wal.Durability
	}{
		{"16x100/direct", 16, 100, 100, false, wal.SyncAlways},
		{"16x100/forwarded", 16, 100, 100, true, wal.SyncAlways},
		{"16x100/direct/SyncNever", 16, 100, 100, false, wal.SyncNever},
		{"256x1/direct", 256, 1, 100, false, wal.SyncAlways},
		{"256x1/forwarded", 256, 1, 100, true, wal.SyncAlways},
		{"1x1/direct", 1, 1, 100, false, wal.SyncAlways},
		{"1x1/forwarded", 1, 1, 100, true, wal.SyncAlways},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, t := benchCluster(b, bc.durability)
			runProducers(b, c, t, bc.producers, bc.batch, bc.size, bc.forward)
			if bc.producers == 1 {
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/append")
			}
		})
	}
}
