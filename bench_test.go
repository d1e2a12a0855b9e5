package replog_test

import (
	"context"
	"testing"

	"github.com/replog/replog"
)

// benchCluster starts 3 nodes on disk (SyncAlways) with one partition of
// RF 3 and returns its leader.
func benchCluster(b *testing.B, dur replog.Durability) *replog.Cluster {
	b.Helper()
	lc, err := replog.NewLocalCluster(3, replog.WithDir(b.TempDir()),
		replog.WithConfig(func(c *replog.Config) { c.Durability = dur }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lc.Close() })
	if err := lc.Node(1).CreateTopic(context.Background(), "b", replog.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	ti, err := lc.Node(1).Topic(context.Background(), "b")
	if err != nil {
		b.Fatal(err)
	}
	return lc.Node(ti.Partitions[0].Leader)
}

// BenchmarkAppend measures AcksAll appends of 100-byte records to one
// partition of RF 3 through its leader, by batch size and concurrency
// (parallelism p runs p × GOMAXPROCS appending goroutines)
// (records/s is reported; compare runs of one `go test -bench` only).
func BenchmarkAppend(b *testing.B) {
	cases := []struct {
		name     string
		batch    int
		parallel int
		dur      replog.Durability
	}{
		{"batch=100/parallelism=4/SyncAlways", 100, 4, replog.SyncAlways},
		{"batch=100/parallelism=4/SyncNever", 100, 4, replog.SyncNever},
		{"batch=1/parallelism=1/SyncAlways", 1, 1, replog.SyncAlways},
		{"batch=1/parallelism=64/SyncAlways", 1, 64, replog.SyncAlways},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			c := benchCluster(b, bc.dur)
			batch := make([]replog.Record, bc.batch)
			for i := range batch {
				batch[i].Value = make([]byte, 100)
			}
			b.SetParallelism(bc.parallel)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Append(context.Background(), "b", 0, batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*bc.batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkReadOneRecord reads a backlog one record at a time
// (MaxRecords(1)), with the default MaxBytes and with MaxBytes(1): the two
// should cost about the same, a read decoding only what it returns. Local:
// on the node holding the partition; Forwarded: through a node that holds
// no replica, which asks the leader.
func BenchmarkReadOneRecord(b *testing.B) {
	for _, forwarded := range []bool{false, true} {
		name := "Local"
		if forwarded {
			name = "Forwarded"
		}
		b.Run(name, func(b *testing.B) { benchReadOneRecord(b, forwarded) })
	}
}

func benchReadOneRecord(b *testing.B, forwarded bool) {
	lc, err := replog.NewLocalCluster(2)
	if err != nil {
		b.Fatal(err)
	}
	defer lc.Close()
	ctx := context.Background()
	if err := lc.Node(1).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	ti, err := lc.Node(1).Topic(ctx, "t")
	if err != nil {
		b.Fatal(err)
	}
	c := lc.Node(ti.Partitions[0].Leader)
	reader := c
	if forwarded {
		reader = lc.Node(3 - ti.Partitions[0].Leader)
	}
	batch := make([]replog.Record, 100)
	for i := range batch {
		batch[i] = replog.Record{Value: make([]byte, 100)}
	}
	const backlog = 200 * 100
	for range backlog / 100 {
		if _, err := c.Append(ctx, "t", 0, batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		opts []replog.ReadOption
	}{
		{"MaxBytes=default", []replog.ReadOption{replog.MaxRecords(1)}},
		{"MaxBytes=1", []replog.ReadOption{replog.MaxRecords(1), replog.MaxBytes(1)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			off := int64(0)
			for b.Loop() {
				res, err := reader.Read(ctx, "t", 0, off, bc.opts...)
				if err != nil || len(res.Records) != 1 {
					b.Fatal(err, len(res.Records))
				}
				off = (off + 1) % backlog
			}
		})
	}
}
