package replog_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/replog/replog"
)

// A topic that CreateTopic returned for is usable at once through every
// node: Topics on every node lists it right after the call.
func TestTopicsListsNewTopicAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		ctx := context.Background()
		ctl := replog.ControllerOf(lc.Node(1))
		for i := range 20 {
			name := fmt.Sprintf("t%d", i)
			if err := lc.Node(ctl).CreateTopic(ctx, name, replog.TopicConfig{Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			for _, c := range lc.Nodes() {
				ts, err := c.Topics(ctx)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, ti := range ts {
					found = found || ti.Name == name
				}
				if !found {
					t.Errorf("node %d: Topics right after CreateTopic(%q) returned on node %d lacks it (%d topics)", c.ID(), name, ctl, len(ts))
				}
			}
		}
	})
}
