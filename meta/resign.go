package meta

import (
	"context"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// resignReq is a caller of Resign, waiting until another node leads.
type resignReq struct {
	ctx  context.Context
	last int64 // tick the transfer was last asked of raft
	done chan struct{}
}

// Resign hands the controller's role (the metadata raft leadership) to
// another node if this node holds it, and returns once another node
// leads, or at once if this node does not lead. A node that is about to
// stop calls it after Drain (a controlled shutdown), so that the cluster
// has a controller again within a round trip instead of an election
// timeout (and a proposal retry) later. The leadership goes to the voter
// with the longest log among those that answered within the last lease;
// while it moves, the leader drops new proposals (their proposers resend
// them). Errors: ctx's error (the leadership may still move), ErrClosed.
func (n *Node) Resign(ctx context.Context) error {
	r := &resignReq{ctx: ctx, done: make(chan struct{})}
	if err := send(ctx, n, n.resignc, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("meta: resign: %w", ctx.Err())
	case <-n.done:
		return n.closedErr()
	}
}

// resign takes a Resign call: answered at once when another node leads,
// else kept until one does, and the transfer started.
func (d *driver) resign(r *resignReq) {
	if d.lead != 0 && !d.isLeader {
		close(r.done)
		return
	}
	d.resigns = append(d.resigns, r)
	if d.isLeader {
		d.transfer(r)
	}
}

// transfer asks raft to hand the leadership to the voter with the longest
// log among those that answered within leaseTicks; raft sends it
// MsgTimeoutNow once its log is complete, and it campaigns at once.
func (d *driver) transfer(r *resignReq) {
	r.last = d.now
	var to, match uint64
	d.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == d.n.cfg.ID || pr.IsLearner || d.now-d.lastAck[id] > d.n.cfg.leaseTicks() {
			return
		}
		if to == 0 || pr.Match > match {
			to, match = id, pr.Match
		}
	})
	if to != 0 {
		d.n.log.Info("meta: handing the controller over", "to", to)
		d.transferAt = max(d.now, 1)
		d.n.lease.Store(0)
		d.rn.TransferLeader(to)
	}
}

// resigned answers the Resign callers once another node leads.
func (d *driver) resigned() {
	if d.lead == 0 || d.isLeader {
		return
	}
	for _, r := range d.resigns {
		close(r.done)
	}
	d.resigns = nil
}

// tickResigns forgets callers that gave up and, while this node still
// leads, asks again for a transfer raft abandoned (it gives one up after an
// election timeout) or could not start (no voter answered recently).
func (d *driver) tickResigns() {
	d.resigns = slices.DeleteFunc(d.resigns, func(r *resignReq) bool { return r.ctx.Err() != nil })
	for _, r := range d.resigns {
		if d.isLeader && d.now-r.last >= int64(d.n.cfg.ElectionTicks) {
			d.transfer(r)
		}
	}
}
