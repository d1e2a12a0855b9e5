package meta

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A closed node (or one whose driver stopped on an error) holds no lease:
// Topic answers ErrClosed, not the last State as fresh.
func TestTopicAfterCloseIsErrClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		n := c.nodes[l]
		c.waitFor("lease", 100, n.leaseValid)
		c.stop(l)
		time.Sleep(time.Minute)
		tp, err := n.Topic(ctxT(t, time.Second), "t")
		if !errors.Is(err, ErrClosed) || tp != nil {
			t.Fatalf("Topic on a node closed a minute ago: err %v, want ErrClosed", err)
		}
	})
}
