package replication

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog/transport"
)

// An AcksNone append forwarded over a link that lost its one message,
// healed right after: the producer's timer sends it again (the leader
// deduplicates), though its Append returned at once; only calls whose
// callers gave up waiting are never sent again.
func TestAcksNoneLostMessageResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, l, f := forwardingPair(t)
		ctx := context.Background()

		c.net.SetLink(f, l, transport.LinkFaults{Drop: 1})
		if _, _, err := c.nodes[f].rep.Append(ctx, "t", 0, rec("N"), AcksNone); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		c.net.Heal()
		appendN(t, ctx, c, l, "after", 1) // through the leader itself: not ordered with N
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := values(c); !slices.Contains(got, "N") {
			t.Fatalf("AcksNone record lost to one dropped message on a healed link: log %v", got)
		}
	})
}
