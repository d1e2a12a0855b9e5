package replog_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/replog/replog"
)

// A Read with MaxRecords returns the same records through a node that
// holds no replica (forwarded to the leader) as on the leader itself, for
// counts within the first batch and beyond it, from offsets inside
// batches.
func TestForwardedReadMaxRecordsMatchesLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 2)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 1})
		ctx := context.Background()
		info, err := lc.Node(1).Topic(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		leader := lc.Node(info.Partitions[0].Leader)
		other := lc.Node(3 - info.Partitions[0].Leader)
		for _, n := range []int{1, 1, 3, 10, 1, 5} { // batches of these sizes: offsets 0 to 20
			if _, err := leader.Append(ctx, "t", 0, recs(fmt.Sprint("b", n), n)); err != nil {
				t.Fatal(err)
			}
		}
		for _, off := range []int64{0, 1, 3, 4, 9, 15, 16, 20} {
			for _, max := range []int{1, 2, 3, 7, 12, 64, 100} {
				want, err := leader.Read(ctx, "t", 0, off, replog.MaxRecords(max))
				if err != nil {
					t.Fatal(err)
				}
				got, err := other.Read(ctx, "t", 0, off, replog.MaxRecords(max))
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Records) != len(want.Records) || len(got.Records) == 0 || len(got.Records) > max {
					t.Fatalf("offset %d, MaxRecords %d: forwarded read gave %d records, local %d", off, max, len(got.Records), len(want.Records))
				}
				for i := range got.Records {
					if got.Records[i].Offset != off+int64(i) || string(got.Records[i].Value) != string(want.Records[i].Value) {
						t.Fatalf("offset %d, MaxRecords %d: record %d is %d %q, local %d %q", off, max, i,
							got.Records[i].Offset, got.Records[i].Value, want.Records[i].Offset, want.Records[i].Value)
					}
				}
			}
		}
	})
}
