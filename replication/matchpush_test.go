package replication

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/log"
)

// matchPushDropper is a replication Sender that, once armed, loses the
// next push to one node that starts a match (pushTruncate), and only that
// item: the other items of its message go through.
type matchPushDropper struct {
	inner   Sender
	mu      sync.Mutex
	to      uint64
	armed   bool
	dropped int
}

func (d *matchPushDropper) arm(to uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.to, d.armed = to, true
}

func (d *matchPushDropper) droppedPushes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

func (d *matchPushDropper) Send(to uint64, msg []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.armed || to != d.to || len(msg) < 2 {
		return d.inner.Send(to, msg)
	}
	out := append(make([]byte, 0, len(msg)), msg[:2]...) // tag room, version
	for rest := msg[2:]; len(rest) > 0; {
		kind, body, next, err := splitItem(rest)
		if err != nil {
			return d.inner.Send(to, msg)
		}
		item := rest[:len(rest)-len(next)]
		rest = next
		var p pushItem
		if d.armed && kind == kindPush && decodePush(body, &p) == nil && p.flags&pushTruncate != 0 {
			d.armed = false
			d.dropped++
			continue
		}
		out = append(out, item...)
	}
	if len(out) == 2 {
		return nil
	}
	return d.inner.Send(to, out)
}

// A follower takes no push of a new leader before the one that starts its
// match (pushTruncate): the match push both truncates what the follower
// holds past the point where its log agrees with the leader's and confirms
// that agreement; a later push that happens to continue the follower's log
// by offset continues a log whose tail may differ from the leader's. The
// scenario, as TestForwardLossRetriedOnce met it about once in 600 runs
// (30% loss between a follower and the leader): leader L of epoch E writes
// x at offset 3 that no follower gets; Q leads E+1 and writes b at 3;
// L's hello makes Q match it at 3 and push b with the order to truncate
// x, but that push is lost; Q writes c at 4 and pushes it to L, now
// matched, from 4, which is L's log end. L appended c after x, its log
// ([a a a x c]) claiming epoch E+1 from 4, so no later match saw the
// difference: Q's and L's logs differed at 3 below the high watermark,
// and L, the preferred leader, led again with x.
func TestFollowerTakesNoPushBeforeItsMatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cuts := map[uint64]*dropSender{}
		drops := map[uint64]*matchPushDropper{}
		c := newTCluster(t, 3, func(id uint64, cfg *Config) {
			d := &matchPushDropper{inner: cfg.Replication}
			cut := &dropSender{inner: d, cut: map[uint64]bool{}}
			drops[id], cuts[id] = d, cut
			cfg.Replication = cut
			// Nobody is shrunk out of the ISR while the scenario runs.
			cfg.ReplicaLagTime = time.Minute
		})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		l, q, r, part := preferredLeaderStart(t, ctx, c)

		// x reaches L's log only.
		cuts[l].set(q, r)
		if base, _, err := c.nodes[l].rep.Append(ctx, "t", 0, rec("x"), AcksLeader); err != nil || base != 3 {
			t.Fatalf("append x via L: offset %d, %v", base, err)
		}

		// Q leads E+1 and writes b at 3 before it hears from L.
		if err := c.nodes[l].meta.SetUnhealthy(ctx, true); err != nil {
			t.Fatal(err)
		}
		c.waitFor("Q leads epoch E+1", 30*time.Second, func() bool { return leaderReady(c, q, part.LeaderEpoch+1) })
		if base, _, err := c.nodes[q].rep.Append(ctx, "t", 0, rec("b"), AcksLeader); err != nil || base != 3 {
			t.Fatalf("append b via Q: offset %d, %v", base, err)
		}
		c.waitFor("R holds b", 30*time.Second, func() bool {
			_, end, ok := c.logBytes(r, "t", 0)
			return ok && end == 4
		})

		// L's answers reach Q again: Q matches L at 3, and its first push
		// (b, and the order to truncate x) is lost.
		drops[q].arm(l)
		cuts[l].set()
		c.waitFor("Q's match push to L lost", 30*time.Second, func() bool { return drops[q].droppedPushes() == 1 })

		// c, pushed to L from 4, must not land on x.
		if base, _, err := c.nodes[q].rep.Append(ctx, "t", 0, rec("c"), AcksLeader); err != nil || base != 4 {
			t.Fatalf("append c via Q: offset %d, %v", base, err)
		}
		c.waitFor("L's high watermark passes c", 60*time.Second, func() bool {
			hw, _, ok := c.nodes[l].rep.PartitionState("t", 0)
			return ok && hw >= 5
		})
		hw, _, _ := c.nodes[l].rep.PartitionState("t", 0)
		lb, _, _ := c.logBytes(l, "t", 0)
		qb, _, _ := c.logBytes(q, "t", 0)
		if !bytes.Equal(prefixBelow(t, lb, hw), prefixBelow(t, qb, hw)) {
			t.Fatalf("L's log %q diverges from the leader's %q below its high watermark %d",
				logValues(t, lb), logValues(t, qb), hw)
		}
		checkValues(t, values(c), append(names("a", 3), "b", "c"))
	})
}

// prefixBelow returns the batches of raw that end at or below offset.
func prefixBelow(t *testing.T, raw []byte, offset int64) []byte {
	t.Helper()
	n := 0
	for rest := raw; len(rest) > 0; {
		b, next, err := log.SplitBatch(rest)
		if err != nil {
			t.Fatal(err)
		}
		if b.NextOffset() > offset {
			break
		}
		n = len(raw) - len(next)
		rest = next
	}
	return raw[:n]
}
