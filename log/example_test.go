package log_test

import (
	"context"
	"fmt"

	"github.com/replog/replog/log"
	"github.com/replog/replog/wal"
)

// A leader appends, a follower copies the raw batches, the high watermark
// commits them, and a consumer reads below it.
func Example() {
	ctx := context.Background()
	fsys := wal.NewMemFS()
	leader, err := log.Open(log.Options{WAL: wal.Options{FS: fsys, Dir: "/leader"}})
	if err != nil {
		panic(err)
	}
	defer leader.Close()
	follower, err := log.Open(log.Options{WAL: wal.Options{FS: fsys, Dir: "/follower"}})
	if err != nil {
		panic(err)
	}
	defer follower.Close()

	base, last, err := leader.AppendLeader(ctx, 1, []log.Record{
		{Key: []byte("user-1"), Value: []byte("signed up")},
		{Key: []byte("user-1"), Value: []byte("paid")},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("appended", base, "to", last)

	raw, err := leader.ReadBatches(nil, follower.LogEndOffset(), leader.LogEndOffset(), 1<<20)
	if err != nil {
		panic(err)
	}
	end, err := follower.AppendFollower(ctx, raw)
	if err != nil {
		panic(err)
	}
	if err := leader.SetHighWatermark(end); err != nil { // both replicas hold it
		panic(err)
	}

	recs, err := leader.Read(0, leader.HighWatermark(), 1<<20)
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Printf("%d %s %s\n", r.Offset, r.Key, r.Value)
	}
	// Output:
	// appended 0 to 1
	// 0 user-1 signed up
	// 1 user-1 paid
}
