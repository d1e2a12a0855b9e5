package replog_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/replog/replog"
)

// A topic of the longest name is usable on disk: its replicas'
// directories ("<name>-<topic ID>-<partition>") stay within the 255 bytes
// of a file name, here with a two-digit ID and a three-digit partition.
func TestLongestTopicNameOnDisk(t *testing.T) {
	dir := t.TempDir()
	lc, err := replog.NewLocalCluster(1, replog.WithDir(dir), replog.WithConfig(func(c *replog.Config) {
		c.SessionTimeout = 500 * time.Millisecond
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 10 { // topic IDs grow: the long name's gets two digits
		if err := lc.Node(1).CreateTopic(ctx, "short"+strings.Repeat("x", i), replog.TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	name := strings.Repeat("a", replog.MaxTopicNameLen)
	if err := lc.Node(1).CreateTopic(ctx, name, replog.TopicConfig{Partitions: 101}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	for _, p := range []int32{0, 100} {
		if _, err := lc.Node(1).Append(ctx, name, p, recs("x", 1)); err != nil {
			t.Errorf("Append to partition %d of a topic with the longest name = %v", p, err)
		}
	}
}
