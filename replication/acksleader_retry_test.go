package replication

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// newSlowSyncCluster is a 3-node cluster whose wals can be stalled and
// whose replication messages can be cut, with a SyncTimeout (30 s) far
// above the producers' resend timeout (1 s).
func newSlowSyncCluster(t *testing.T, lagTime time.Duration) (*tcluster, map[uint64]*wal.StallFS, map[uint64]*dropSender) {
	stalls := map[uint64]*wal.StallFS{}
	senders := map[uint64]*dropSender{}
	c := newTCluster(t, 3, func(id uint64, cfg *Config) {
		s := wal.NewStallFS(cfg.FS)
		stalls[id] = s
		cfg.FS = s
		cfg.SyncTimeout = 30 * time.Second
		if lagTime > 0 {
			cfg.ReplicaLagTime = lagTime
		}
		d := &dropSender{inner: cfg.Replication, cut: map[uint64]bool{}}
		senders[id] = d
		cfg.Replication = d
	})
	t.Cleanup(func() {
		for _, s := range stalls {
			s.Release()
		}
	})
	return c, stalls, senders
}

// An AcksLeader append whose sync outlasts the producer's resend timeout
// is resent while its round is in flight. The retry must be answered when
// that round is durable, as the first attempt is, not parked with the
// AcksAll appends until the high watermark passes it (here: never, the
// followers hear nothing).
func TestAcksLeaderRetryAnsweredWhenDurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, stalls, senders := newSlowSyncCluster(t, 10*time.Second)
		c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 2})
		l := c.leader("t", 0)
		ctx := context.Background()
		appendN(t, ctx, c, l, "a", 1)
		var fs []uint64
		for _, id := range c.ids {
			if id != l {
				fs = append(fs, id)
			}
		}
		senders[l].set(fs...) // the high watermark cannot move
		stalls[l].Stall()
		done := make(chan error, 1)
		go func() {
			_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader)
			done <- err
		}()
		time.Sleep(3300 * time.Millisecond) // the sync takes 3.3 s: several resends
		p := producerOf(c, l)
		p.mu.Lock()
		attempt := p.mu.calls[0].attempt
		p.mu.Unlock()
		if attempt < 2 {
			t.Fatalf("the call was sent %d times during the slow sync: the scenario needs a retry", attempt)
		}
		released := time.Now()
		stalls[l].Release()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("AcksLeader append: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("AcksLeader append still waiting %v after its write was durable (attempt %d)", time.Since(released), attempt)
		}
	})
}

// Nor may such a retry fail with ErrNotEnoughReplicas, as AcksAll appends
// waiting for the high watermark do when the ISR is short: its batch is
// written.
func TestAcksLeaderRetryNeverNotEnoughReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, stalls, senders := newSlowSyncCluster(t, 0)
		ctx := context.Background()
		l, g := stopFollowerOfFullISR(t, ctx, c) // MinInSyncReplicas 3, g stopped
		c.waitStoppedOutOfISR(l)
		f := c.other(l)
		if _, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("all"), AcksAll); !errors.Is(err, ErrNotEnoughReplicas) {
			t.Fatalf("AcksAll with a short ISR: %v, want ErrNotEnoughReplicas", err)
		}
		senders[l].set(f)
		stalls[l].Stall()
		done := make(chan error, 1)
		go func() {
			_, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("leader"), AcksLeader)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(8 * time.Second):
			stalls[l].Release()
			err = <-done
		}
		stalls[l].Release()
		senders[l].set()
		c.start(g)
		if got := values(c); errors.Is(err, ErrNotEnoughReplicas) || err != nil && slices.Contains(got, "leader") {
			t.Fatalf("AcksLeader append failed (%v), yet it is in the log: %v", err, got)
		}
	})
}
