package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/internal/history"
)

// client is one sequential process: until ctx ends it appends single
// records with unique values (AcksAll) and reads from offset 0, each call
// through a random running node, and records every call. Each call has
// its own deadline (opTimeout), independent of ctx, so a call in flight
// when the run ends completes normally.
func (h *harness) client(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(uint64(h.cfg.Seed), uint64(c)+1))
	for seq := 0; ctx.Err() == nil; seq++ {
		up := h.upSignal() // before pickNode: a restart after it closes up
		node := h.pickNode(rng)
		if node == 0 {
			// Every node is down (CrashAll): wait for the nemesis to
			// restart one, or for the run to end.
			select {
			case <-ctx.Done():
			case <-up:
			}
			seq--
			continue
		}
		var err error
		if rng.IntN(10) < 7 {
			err = h.doAppend(c, node, fmt.Sprintf("c%d-%d", c, seq))
		} else {
			err = h.doRead(c, node)
		}
		if err != nil {
			// Pacing, not synchronisation: a client whose call failed at
			// once (a node stopping, no leader yet) would otherwise spin
			// and swell the history with failures.
			pause(ctx, errorPause)
		}
	}
}

// errorPause is how long a client pauses after a failed call.
const errorPause = 20 * time.Millisecond

// pickNode returns a random running node, 0 if none runs.
func (h *harness) pickNode(rng *rand.Rand) uint64 {
	var up []uint64
	for _, id := range h.nodes() {
		if h.lc.Running(id) {
			up = append(up, id)
		}
	}
	if len(up) == 0 {
		return 0
	}
	return up[rng.IntN(len(up))]
}

func (h *harness) doAppend(c int, node uint64, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	id := h.rec.InvokeAppend(c, node, value)
	res, err := h.lc.Node(node).Append(ctx, topic, 0, []replog.Record{{Value: []byte(value)}})
	if err != nil {
		h.rec.CompleteAppend(id, appendOutcome(err), 0, err)
		return err
	}
	h.rec.CompleteAppend(id, history.OK, res.BaseOffset, nil)
	return nil
}

func (h *harness) doRead(c int, node uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	id := h.rec.InvokeRead(c, node, 0)
	res, err := h.lc.Node(node).Read(ctx, topic, 0, 0, replog.MaxBytes(16<<20))
	if err != nil {
		// A read changes nothing: a failed read is simply not checked.
		h.rec.CompleteRead(id, history.Fail, nil, err)
		return err
	}
	entries := make([]history.Entry, len(res.Records))
	for i, r := range res.Records {
		entries[i] = history.Entry{Offset: r.Offset, Value: string(r.Value)}
	}
	h.rec.CompleteRead(id, history.OK, entries, nil)
	return nil
}
