package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
)

func TestAppendThroughEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTCluster(t, 3, nil)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const perWriter = 20
		var wg sync.WaitGroup
		errs := make(chan error, 3*2)
		for _, id := range c.ids {
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					prev := int64(-1)
					for i := range perWriter {
						acks := []Acks{AcksAll, AcksLeader}[w]
						base, last, err := c.nodes[id].rep.Append(ctx, "t", 0, rec(fmt.Sprintf("%d/%d/%d", id, w, i)), acks)
						if err != nil {
							errs <- fmt.Errorf("node %d writer %d append %d: %w", id, w, i, err)
							return
						}
						if base != last || base <= prev {
							errs <- fmt.Errorf("node %d writer %d: offsets %d..%d after %d", id, w, base, last, prev)
							return
						}
						prev = base
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		recs := c.converged("t", 0)
		seen := map[string]bool{}
		next := map[string]int{}
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("record %d has offset %d", i, r.Offset)
			}
			v := string(r.Value)
			if seen[v] {
				t.Fatalf("record %q written twice", v)
			}
			seen[v] = true
			var id, w, n int
			fmt.Sscanf(v, "%d/%d/%d", &id, &w, &n)
			key := fmt.Sprintf("%d/%d", id, w)
			if n != next[key] {
				t.Fatalf("writer %s: record %d after %d", key, n, next[key]-1)
			}
			next[key]++
		}
		if len(recs) != 3*2*perWriter {
			t.Fatalf("%d records, want %d", len(recs), 3*2*perWriter)
		}
		// Reads on every node see the same records.
		for _, id := range c.ids {
			res, err := c.nodes[id].rep.Read(ctx, "t", 0, 0, ReadOptions{MaxRecords: 1000})
			if err != nil || len(res.Records) != len(recs) {
				t.Fatalf("node %d read: %d records, %v", id, len(res.Records), err)
			}
		}
	})
}
