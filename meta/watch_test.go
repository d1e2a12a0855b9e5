package meta

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestWatchOrderAndResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, []uint64{1}, false, func(cfg *Config) { cfg.WatchBuffer = 8 })
		n := c.start(1)
		c.leader()
		c.registered()
		w := n.Watch()
		defer w.Close()
		ctx := ctxT(t, 10*time.Second)
		if _, err := n.CreateTopic(ctx, "a", TopicConfig{Partitions: 2}); err != nil {
			t.Fatal(err)
		}
		if err := n.DeleteTopic(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 2 {
			e, err := w.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprint(e.Type, ":", e.Topic))
			if e.State == nil || e.State.Index() != e.Index {
				t.Fatalf("event %v without its state", e.Type)
			}
		}
		if fmt.Sprint(got) != "[topic-created:a topic-deleted:a]" {
			t.Fatalf("events %v", got)
		}
		// A watcher that does not keep up gets one resync, with the state.
		for i := range 10 {
			if _, err := n.CreateTopic(ctx, fmt.Sprint("t", i), TopicConfig{Partitions: 1}); err != nil {
				t.Fatal(err)
			}
		}
		e, err := w.Next(ctx)
		if err != nil || e.Type != EventResync {
			t.Fatalf("overflowed watcher got %v %v", e.Type, err)
		}
		if _, ok := e.State.Topic("t9"); !ok {
			t.Fatal("resync state lacks the latest topic")
		}
		if _, ok := w.TryNext(); ok {
			t.Fatal("events after a resync that covers them")
		}
		w.Close()
		if _, err := w.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
		w2 := n.Watch()
		c.stop(1)
		if _, err := w2.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after node Close: %v", err)
		}
	})
}

// TestLeaseExpiryForcesReadIndex: a follower cut off from the leader
// answers from its state while its lease lasts, then only through
// ReadIndex, which cannot succeed without the leader.
func TestLeaseExpiryForcesReadIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		l := c.topicT()
		f := uint64(1)
		if f == l {
			f = 2
		}
		n := c.nodes[f]
		if err := n.Barrier(ctxT(t, 10*time.Second)); err != nil { // f has applied "t"
			t.Fatal(err)
		}
		c.waitFor("follower lease", 20, n.leaseValid)
		c.net.Partition([]uint64{f}, otherThan(c.peers, f))
		// Inside the lease: local, no waiting even with a done context.
		done := ctxT(t, 0)
		if _, err := n.Topic(done, "t"); err != nil {
			t.Fatalf("read inside the lease: %v", err)
		}
		c.waitFor("lease expiry", 20, func() bool { return !n.leaseValid() })
		if _, err := n.Topic(ctxT(t, 2*time.Second), "t"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read after lease expiry: %v", err)
		}
		c.net.Heal()
		if _, err := n.Topic(ctxT(t, 10*time.Second), "t"); err != nil {
			t.Fatalf("read after heal: %v", err)
		}
	})
}

func otherThan(ids []uint64, x uint64) []uint64 {
	var out []uint64
	for _, id := range ids {
		if id != x {
			out = append(out, id)
		}
	}
	return out
}

// TestTryNextConsumersNeverBlock: consumers sharing a Watcher (each woken
// by Notify, draining with TryNext) each take distinct events, and a
// TryNext that loses the last event to another returns at once instead of
// waiting for the next event.
func TestTryNextConsumersNeverBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const events = 20000
		w := &Watcher{n: &Node{done: make(chan struct{})}, max: events, notify: make(chan struct{}, 1)}
		evs := make([]Event, events)
		for i := range evs {
			evs[i].Index = uint64(i + 1)
		}
		w.push(evs)
		got := make([][]uint64, 2)
		done := make(chan struct{})
		for c := range got {
			go func() {
				defer func() { done <- struct{}{} }()
				for {
					e, ok := w.TryNext()
					if !ok {
						return
					}
					got[c] = append(got[c], e.Index)
				}
			}()
		}
		<-done // a consumer blocked in TryNext is a deadlock synctest reports
		<-done
		seen := map[uint64]bool{}
		for _, g := range got {
			for _, i := range g {
				if seen[i] {
					t.Fatalf("event %d taken twice", i)
				}
				seen[i] = true
			}
		}
		if len(seen) != events {
			t.Fatalf("consumers took %d of %d events", len(seen), events)
		}
	})
}
