package replication

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
)

// dropAll drops every message while on.
type dropAll struct {
	inner Sender
	on    atomic.Bool
}

func (d *dropAll) Send(to uint64, msg []byte) error {
	if d.on.Load() {
		return nil
	}
	return d.inner.Send(to, msg)
}

// Close racing a topic's deletion: the deletion's event has taken the
// topic's producer out of the Manager's map, with a call in flight that
// waits for its answer (producer.topicDeleted), when Close collects the
// producers to fail. The call must still end with ErrClosed, not wait for
// its ctx with no tick left to end it.
func TestCloseDuringTopicDeletionEndsCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drops := map[uint64]*dropAll{}
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			drops[id] = &dropAll{inner: cfg.Forward}
			cfg.Forward = drops[id]
		})
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		l := c.leader("t", 0)
		f := c.other(l)
		m := c.nodes[f].rep
		ctx := context.Background()
		drops[f].on.Store(true) // f's forwarded call is lost: it waits in flight
		errc := make(chan error, 1)
		go func() {
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, _, err := m.Append(actx, "t", 0, rec("x"), AcksAll)
			errc <- err
		}()
		synctest.Wait()
		taken, release := make(chan struct{}), make(chan struct{})
		hook := func() {
			close(taken)
			<-release
		}
		m.topicDeletedHook.Store(&hook)
		go func() { _ = c.nodes[l].meta.DeleteTopic(ctx, "t") }()
		<-taken // f's event took the producer out
		closed := make(chan error, 1)
		go func() { closed <- m.Close() }()
		synctest.Wait() // Close failed what it found and waits for the event's goroutine
		close(release)
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("Append in flight across Close and the topic's deletion: %v, want ErrClosed", err)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}
