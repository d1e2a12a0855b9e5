package meta

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// handleReady processes every pending Ready, in the order etcd raft's
// doc.go prescribes: persist (entries, hard state, snapshot; synced), then
// send, then apply, then Advance. Storage errors are returned and stop the
// node.
func (d *driver) handleReady() error {
	for d.rn.HasReady() {
		rd := d.rn.Ready()
		newLeader := false
		if rd.SoftState != nil {
			newLeader = rd.SoftState.Lead != 0 && rd.SoftState.Lead != d.lead
			d.lead = rd.SoftState.Lead
			d.isLeader = rd.SoftState.RaftState == raft.StateLeader
			d.n.leader.Store(d.lead)
			d.n.log.Debug("meta: raft state", "lead", d.lead, "state", rd.SoftState.RaftState.String())
			if !d.isLeader {
				d.ctrl = nil
			}
			d.resigned()
		}
		if rd.HardState != nil {
			d.term = rd.HardState.GetTerm()
		}
		if err := d.n.st.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return err
		}
		if rd.HardState != nil {
			// Before the send: once a peer may learn of a commit, this
			// node's lease reads wait until it has applied it too.
			d.n.commit.Store(rd.HardState.GetCommit())
		}
		d.send(rd.Messages)
		if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
			if err := d.restore(rd.Snapshot); err != nil {
				return err
			}
		}
		if err := d.applyEntries(rd.CommittedEntries); err != nil {
			return err
		}
		for _, rs := range rd.ReadStates {
			d.readState(rs)
		}
		d.rn.Advance(rd)
		if newLeader {
			d.resendAll()
			// Tell the new controller at once that this node is alive: it
			// grants a node it has not heard from only a short session.
			d.sendHeartbeat()
		}
	}
	d.stepped.state, d.stepped.offs = nil, nil
	d.updateLease()
	return nil
}

// send marshals and sends raft messages. A snapshot is reported as
// delivered once handed to the transport; if it is lost, raft probes again.
func (d *driver) send(msgs []*pb.Message) {
	for _, m := range msgs {
		buf, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 1, 1+proto.Size(m)), m)
		if err != nil {
			d.n.log.Error("meta: marshal raft message", "err", err)
			continue
		}
		err = d.n.cfg.Raft.Send(m.GetTo(), buf)
		if err != nil {
			d.rn.ReportUnreachable(m.GetTo())
		}
		if m.GetType() == pb.MsgSnap {
			status := raft.SnapshotFinish
			if err != nil {
				status = raft.SnapshotFailure
			}
			d.rn.ReportSnapshot(m.GetTo(), status)
		}
	}
}

// applyEntries applies committed entries to the state machine, answers
// their proposers and starts a snapshot every SnapshotEntries entries.
func (d *driver) applyEntries(ents []*pb.Entry) error {
	for _, e := range ents {
		if e.GetIndex() <= d.applied {
			continue
		}
		switch e.GetType() {
		case pb.EntryConfChange:
			cc := new(pb.ConfChange)
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("%w: conf change %d: %v", ErrCorrupt, e.GetIndex(), err)
			}
			d.confState = d.rn.ApplyConfChange(cc)
		case pb.EntryNormal:
			if len(e.GetData()) > 0 {
				d.applyCommand(e.GetIndex(), e.GetData())
			}
		}
		d.applied = e.GetIndex()
	}
	d.pending = d.resolveReads(d.pending)
	d.n.advance(d.applied)
	// Snapshot every SnapshotEntries entries, and no more often than one
	// entry per topic, so that encoding stays O(1) per entry amortised.
	due := max(d.n.cfg.SnapshotEntries, uint64(d.n.state.Load().topics.n))
	if !d.snapping && d.applied-d.snapIndex >= due {
		d.startSnapshot()
	}
	return nil
}

// snapDone is a state snapshot encoded off the driver goroutine.
type snapDone struct {
	index uint64
	cs    *pb.ConfState
	data  []byte
}

// startSnapshot encodes the applied state in a goroutine of its own (the
// State is immutable; the offsets are copied here), so that a large state
// does not stall the driver. One at a time; the driver waits for it before
// it exits.
func (d *driver) startSnapshot() {
	d.snapping = true
	s, offs := d.n.state.Load(), d.n.offsets.Load().clone()
	sd := snapDone{index: d.applied, cs: proto.Clone(d.confState).(*pb.ConfState)}
	d.snapWG.Add(1)
	go func() {
		defer d.snapWG.Done()
		sd.data = encodeSnapshot(s, offs)
		d.n.snapc <- sd // capacity 1, one snapshot in flight: never blocks
	}()
}

// snapshotDone stores an encoded snapshot and compacts the log, unless a
// newer snapshot was installed meanwhile.
func (d *driver) snapshotDone(sd snapDone) error {
	d.snapping = false
	if sd.index <= d.snapIndex {
		return nil
	}
	if err := d.n.st.snapshotAndCompact(sd.index, d.n.cfg.SnapshotEntries/2, sd.cs, sd.data); err != nil {
		return err
	}
	d.snapIndex = sd.index
	return nil
}

// applyCommand applies one command. A command that does not decode is
// skipped, the same way on every node.
func (d *driver) applyCommand(index uint64, data []byte) {
	c, err := decodeCommand(data)
	if err != nil {
		d.n.log.Error("meta: skipped undecodable command", "index", index, "err", err)
		return
	}
	prev := d.n.state.Load()
	next, evs, res := apply(prev, index, c, d.n.offsets.Load())
	if next != prev {
		d.n.state.Store(next)
	}
	if me, ok := next.nodes[d.n.cfg.ID]; ok && me.Nonce == d.nonce && d.n.inc.Load() != me.Incarnation {
		d.n.inc.Store(me.Incarnation)
		d.sendHeartbeat() // registered: start the session at once
	}
	if len(evs) > 0 {
		d.n.publish(evs)
		for _, e := range evs {
			if e.Type != EventTopicCreated && e.Type != EventTopicDeleted {
				d.scan = true
			}
		}
	}
	// Sequences restart at every Open: only a command of this Open (its
	// nonce) answers a waiter, never one of an earlier Open replayed or
	// committed late. A duplicate whose waiter is still there was applied
	// where this node did not see it (inside a snapshot) or is too old to
	// tell: it is answered from the state, as answerFromSnapshot does,
	// rather than left to wait for its ctx.
	if c.From == d.n.cfg.ID && c.Session == d.nonce {
		if p, ok := d.waiters[c.Seq]; ok {
			delete(d.waiters, c.Seq)
			if res.dup {
				res = snapshotOutcome(c, next, d.n.offsets.Load())
			}
			res.index = index
			p.resp <- res
		}
	}
}

// readState matches a ReadIndex answer to its caller.
func (d *driver) readState(rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	r, ok := d.reads[binary.BigEndian.Uint64(rs.RequestCtx)]
	if !ok {
		return
	}
	delete(d.reads, r.id)
	r.index = rs.Index
	d.pending = d.resolveReads(append(d.pending, r))
}

// resolveReads answers the reads whose index has been applied and returns
// the others.
func (d *driver) resolveReads(rs []*readReq) []*readReq {
	out := rs[:0]
	for _, r := range rs {
		if r.index <= d.applied {
			close(r.resp)
		} else {
			out = append(out, r)
		}
	}
	return out
}
