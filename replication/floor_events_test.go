package replication

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/meta"
)

// The leader keeps a lagging follower in the ISR to stay at
// MinInSyncReplicas (isrFloor) and refuses AcksAll appends as if the ISR
// were short; the metadata ISR is full. An event of another partition of
// the topic (the watch loop reconciles the whole topic) must not reset
// the producer's shortage clock: with such events less than
// ReplicaLagTime apart, an AcksAll Append would never end with
// ErrNotEnoughReplicas and wait for its ctx, forever with
// context.Background(). The events are made by calling reconcileTopic as
// the watch loop does.
func TestFloorShortageNotResetByOtherPartitionsEvents(t *testing.T) {
	for _, churn := range []bool{false, true} {
		t.Run(fmt.Sprintf("churn=%v", churn), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, senders := newCutCluster(t, 0)
				c.createTopic("t", meta.TopicConfig{Partitions: 2, ReplicationFactor: 3, MinInSyncReplicas: 3})
				l := c.leader("t", 0)
				f := c.other(l)
				ctx := context.Background()
				appendN(t, ctx, c, l, "a", 1)
				senders[l].set(f) // f stays alive and registered, but lags on l's partitions

				actx, cancel := context.WithTimeout(ctx, 60*time.Second)
				defer cancel()
				errc := make(chan error, 1)
				start := time.Now()
				go func() {
					_, _, err := c.nodes[l].rep.Append(actx, "t", 0, rec("x"), AcksAll)
					errc <- err
				}()
				m := c.nodes[l].rep
				for {
					select {
					case err := <-errc:
						took := time.Since(start)
						if errors.Is(err, context.DeadlineExceeded) {
							t.Fatalf("AcksAll with the ISR held at its floor never got ErrNotEnoughReplicas (%v); returned ctx's error after %v",
								DefaultReplicaLagTime, took)
						}
						if !errors.Is(err, ErrNotEnoughReplicas) {
							t.Fatalf("err = %v", err)
						}
						return
					case <-time.After(time.Second):
						if churn {
							if tp, ok := m.cfg.Meta.State().Topic("t"); ok {
								m.reconcileTopic(tp)
							}
						}
					}
				}
			})
		})
	}
}
