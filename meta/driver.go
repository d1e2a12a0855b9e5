package meta

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// driver is the state the driver goroutine owns: the RawNode and
// everything between it and the callers.
type driver struct {
	n         *Node
	rn        *raft.RawNode
	now       int64
	term      uint64
	lead      uint64
	isLeader  bool
	confState *pb.ConfState
	applied   uint64
	snapIndex uint64
	snapping  bool           // a snapshot is being encoded
	snapWG    sync.WaitGroup // the snapshot goroutine

	nonce        uint64
	nextRegister int64
	seq          uint64
	waiters      map[uint64]*proposal
	reads        map[uint64]*readReq
	readSeq      uint64
	pending      []*readReq // ReadState known, waiting for apply
	resigns      []*resignReq
	// transferAt is the tick of the last leadership transfer this node
	// started, 0 for none: no leader lease for a while (see updateLease).
	transferAt int64

	ctrl        *controller
	scan        bool // partitions or nodes changed since the last scan
	lastAck     map[uint64]int64
	lastContact int64 // tick of the last message from the leader
	// ackAt and contactAt are lastAck and lastContact on the clock
	// (Node.clock): leases run out in real time, also while the driver
	// is stalled or drops ticks.
	ackAt     map[uint64]time.Duration
	contactAt time.Duration
	quorumAt  time.Duration // as leader: when a quorum last acknowledged it (updateSession)
	// stepped: the snapshot step decoded last, by its index and term
	// (raft hands restore a copy of the message's), for restore.
	stepped struct {
		index, term uint64
		state       *State
		offs        *offsetTable
	}
	followed uint64           // the leader that message came from
	heard    map[uint64]int64 // node → tick of its last raft message or heartbeat
}

func (d *driver) init(n *Node) error {
	d.n = n
	d.waiters = map[uint64]*proposal{}
	d.reads = map[uint64]*readReq{}
	d.lastAck = map[uint64]int64{}
	d.ackAt = map[uint64]time.Duration{}
	d.heard = map[uint64]int64{}
	nonce, err := newNonce()
	if err != nil {
		return err
	}
	d.nonce = nonce
	// ReadIndex requests are matched to their answers by ID alone: a run
	// that numbered them from 1 again would take an answer meant for the
	// previous run's read (delivered late, after a restart) for its own,
	// with that read's older index.
	if d.readSeq, err = newNonce(); err != nil {
		return err
	}
	n.offsets.Store(newOffsetTable())
	n.state.Store(emptyState())
	snap, err := n.st.Snapshot()
	if err != nil {
		return fmt.Errorf("meta: read snapshot: %w", err)
	}
	d.confState = proto.Clone(snap.GetMetadata().GetConfState()).(*pb.ConfState)
	if !raft.IsEmptySnap(snap) {
		if err := d.restore(snap); err != nil {
			return err
		}
	}
	d.rn, err = newRawNode(&n.cfg, n.st, d.applied)
	if err != nil {
		return fmt.Errorf("meta: start raft: %w", err)
	}
	last, _ := n.st.LastIndex()
	hs, _, _ := n.st.InitialState()
	if last == 0 && raft.IsEmptyHardState(hs) {
		peers := make([]raft.Peer, len(n.cfg.Peers))
		for i, id := range n.cfg.Peers {
			peers[i] = raft.Peer{ID: id}
		}
		if err := d.rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("meta: bootstrap: %w", err)
		}
	}
	return nil
}

// restore replaces the state machine with a snapshot's.
func (d *driver) restore(snap *pb.Snapshot) error {
	s, offs := d.stepped.state, d.stepped.offs
	if md := snap.GetMetadata(); s == nil || d.stepped.index != md.GetIndex() || d.stepped.term != md.GetTerm() {
		var err error
		if s, offs, err = decodeSnapshot(snap.GetData()); err != nil {
			return err
		}
	}
	d.stepped.state, d.stepped.offs = nil, nil
	d.n.offsets.Store(offs)
	d.n.state.Store(s)
	d.applied = snap.GetMetadata().GetIndex()
	d.snapIndex = d.applied
	d.confState = proto.Clone(snap.GetMetadata().GetConfState()).(*pb.ConfState)
	d.n.inc.Store(0)
	if me, ok := s.nodes[d.n.cfg.ID]; ok && me.Nonce == d.nonce {
		d.n.inc.Store(me.Incarnation)
	}
	d.n.publish([]Event{{Type: EventResync, Index: d.applied, State: s}})
	d.n.advance(d.applied)
	d.scan = true
	d.answerFromSnapshot(s, offs)
	return nil
}

// tick advances time by one tick.
func (d *driver) tick() {
	d.rn.Tick()
	d.now++
	d.updateLease()
	retry := d.n.cfg.retryTicks()
	for seq, p := range d.waiters {
		switch {
		case p.ctx.Err() != nil:
			delete(d.waiters, seq)
		case d.now-p.last >= retry:
			d.n.log.Debug("meta: proposal retried", "seq", p.cmd.Seq)
			d.proposeData(p)
		}
	}
	for id, r := range d.reads {
		switch {
		case r.ctx.Err() != nil:
			delete(d.reads, id)
		case d.now-r.last >= retry:
			d.readIndex(r)
		}
	}
	d.pending = slices.DeleteFunc(d.pending, func(r *readReq) bool { return r.ctx.Err() != nil })
	d.tickResigns()
	d.register()
	if d.now%d.n.cfg.heartbeatTicks() == 0 {
		d.sendHeartbeat()
	}
	d.control()
}

// register proposes this node's registration until it is applied.
func (d *driver) register() {
	s := d.n.state.Load()
	if me, ok := s.nodes[d.n.cfg.ID]; ok && me.Nonce == d.nonce || d.now < d.nextRegister || d.lead == 0 {
		return
	}
	d.nextRegister = d.now + d.n.cfg.retryTicks()
	_ = d.rn.Propose(encodeCommand(&command{Op: opRegister, Node: d.n.cfg.ID, Nonce: d.nonce}))
}

func (d *driver) sendHeartbeat() {
	inc := d.n.inc.Load()
	if inc == 0 || d.lead == 0 {
		return
	}
	h := heartbeatMsg{node: d.n.cfg.ID, inc: inc, sent: uint64(d.n.clock())}
	if d.lead == d.n.cfg.ID {
		d.heartbeat(h)
		return
	}
	_ = d.n.cfg.Meta.Send(d.lead, appendHeartbeat(make([]byte, 1, 24), h))
}

// heartbeat passes a node's heartbeat to the controller, if this node is
// it, and notes it in any case: a controller about to take office counts
// the sessions from there (controller.takeover).
func (d *driver) heartbeat(h heartbeatMsg) {
	d.heard[h.node] = d.now
	if d.ctrl != nil {
		d.ctrl.heartbeat(h.node, h.inc, d.now)
		if h.node != d.n.cfg.ID && h.sent != 0 {
			// Tell the node its session runs on (Node.InSession).
			_ = d.n.cfg.Meta.Send(h.node, appendMeta(make([]byte, 1, 24), metaMsg{kind: metaHeartbeatAck, node: d.n.cfg.ID, val: h.sent}))
		}
	}
}

// control runs the controller on the raft leader.
func (d *driver) control() {
	if !d.isLeader {
		d.ctrl = nil
		return
	}
	s := d.n.state.Load()
	if d.ctrl == nil {
		// Decide on nothing before this term's first entry is applied:
		// until then the State may lack what the previous leader committed.
		if t, _ := d.n.st.Term(d.applied); t != d.term {
			return
		}
		d.ctrl = newController(d.n.cfg.sessionTicks(), d.n.cfg.graceTicks(), d.n.cfg.retryTicks())
		d.ctrl.takeover(s, d.now, d.heard, d.followed)
		d.scan = true
	}
	// Sessions are checked every tick (a loop over the nodes), so that a
	// node is fenced on the tick its session expires; the partitions are
	// scanned only when something changed, and now and then.
	scan := d.scan || d.now%d.n.cfg.sessionTicks() == 0
	d.scan = false
	for _, c := range d.ctrl.decide(s, d.now, scan) {
		_ = d.rn.Propose(encodeCommand(c))
	}
}

// updateLease publishes until which tick local reads count as fresh: on
// the leader, a quorum acknowledged it within leaseTicks and it has applied
// an entry of its term; on a follower, it heard from the leader within
// leaseTicks.
func (d *driver) updateLease() {
	lt := time.Duration(d.n.cfg.leaseTicks()) * d.n.cfg.TickInterval
	d.updateSession()
	var until time.Duration
	switch {
	case d.isLeader:
		if t, _ := d.n.st.Term(d.applied); t != d.term {
			break
		}
		if d.transferAt != 0 && d.now-d.transferAt < 2*int64(d.n.cfg.ElectionTicks) {
			// A transferee campaigns at once (MsgTimeoutNow), and voters
			// grant it their votes within their leases: the lease
			// argument does not hold while a transfer may run. Raft gives
			// a transfer up after an election timeout, and its
			// MsgTimeoutNow may still be on its way then: two timeouts.
			break
		}
		until = d.quorumAt + lt // the quorum-th most recent ack (updateSession)
	case d.lead != 0:
		until = d.contactAt + lt
	}
	d.n.lease.Store(int64(until))
}

// updateSession publishes until when this node counts as in touch with
// the controller (see Node.InSession): SessionTimeout after its latest
// heartbeat that a controller acknowledged left (the controller fences it
// no earlier than SessionTimeout after that heartbeat arrived: the node
// stops first), or on the raft leader, which runs the controller, after a
// quorum's most recent acks if that is later. A leader stepping down keeps
// that quorum time as its acknowledged heartbeat, so a handover does not
// cost it its session before the new controller acknowledges one.
func (d *driver) updateSession() {
	if d.isLeader {
		acks := []time.Duration{d.n.clock()}
		for _, id := range d.confState.GetVoters() {
			if id != d.n.cfg.ID {
				acks = append(acks, d.ackAt[id])
			}
		}
		slices.Sort(acks)
		d.quorumAt = acks[len(acks)-1-len(acks)/2] // the quorum-th most recent
	} else if d.quorumAt != 0 {
		d.n.noteAcked(d.quorumAt)
		d.quorumAt = 0
	}
	last := max(time.Duration(d.n.hbAcked.Load()), d.quorumAt)
	d.n.session.Store(int64(last + d.n.cfg.SessionTimeout))
}

// campaignTransfer is raft's Context of the votes a leadership transfer
// asks for.
const campaignTransfer = "CampaignTransfer"

// step passes an inbound raft message, which arrived at clock reading at,
// to raft, noting lease contacts and that its sender is alive.
func (d *driver) step(m *pb.Message, at time.Duration) {
	if m.GetType() == pb.MsgSnap {
		// handleReady persists a snapshot before it decodes it: one that
		// does not decode would stop this node at every Open. Checked
		// here, on the driver (a large one takes a while to decode, too
		// long for the transport's goroutine); raft sends it again.
		s, offs, err := decodeSnapshot(m.GetSnapshot().GetData())
		if err != nil {
			d.n.log.Warn("meta: dropped a snapshot that does not decode", "from", m.GetFrom(), "err", err)
			return
		}
		// Kept for restore, should raft install this very snapshot in the
		// Ready that follows (handleReady forgets it after that Ready).
		md := m.GetSnapshot().GetMetadata()
		d.stepped.index, d.stepped.term, d.stepped.state, d.stepped.offs = md.GetIndex(), md.GetTerm(), s, offs
	}
	d.heard[m.GetFrom()] = d.now
	if t := m.GetType(); (t == pb.MsgVote || t == pb.MsgPreVote) && d.now < int64(d.n.cfg.ElectionTicks) &&
		string(m.GetContext()) != campaignTransfer {
		// Raft refuses votes while it heard from a leader within the
		// election timeout: the leader's lease rests on that. A node
		// just opened has forgotten whom it heard from before it
		// stopped, so it votes for no one for an election timeout (a
		// leadership transfer excepted: its leader gave its lease up).
		return
	}
	if m.GetTerm() >= d.term {
		switch m.GetType() {
		case pb.MsgHeartbeatResp, pb.MsgAppResp:
			d.lastAck[m.GetFrom()] = d.now
			d.ackAt[m.GetFrom()] = at
		case pb.MsgHeartbeat, pb.MsgApp:
			d.lastContact, d.followed = d.now, m.GetFrom()
			d.contactAt = at
		}
	}
	if m.GetType() == pb.MsgAppResp && m.GetReject() && d.isLeader && m.GetRejectHint() < d.match(m.GetFrom()) {
		// The follower's log ends before entries it acknowledged: it lost
		// its log (a wiped disk, or Dir "" without a MemStore). Raft cannot
		// probe below the match it recorded and would resend the same
		// append at once, forever; drop the reply instead. The follower
		// then stops on the commit index of the next heartbeat.
		d.n.log.Error("meta: follower lost its raft log", "node", m.GetFrom(), "hint", m.GetRejectHint())
		return
	}
	if err := d.rn.Step(m); err != nil {
		d.n.log.Debug("meta: raft step", "err", err)
	}
}

// match returns the leader's recorded match index of follower id.
func (d *driver) match(id uint64) uint64 {
	var m uint64
	d.rn.WithProgress(func(pid uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pid == id {
			m = pr.Match
		}
	})
	return m
}

// propose starts a caller's proposal.
func (d *driver) propose(p *proposal) {
	d.seq++
	p.cmd.From, p.cmd.Session, p.cmd.Seq = d.n.cfg.ID, d.nonce, d.seq
	p.data = encodeCommand(p.cmd)
	d.waiters[d.seq] = p
	d.proposeData(p)
}

// proposeData (re)proposes p. A proposal raft drops (no leader yet) or
// loses on the way is proposed again after retryTicks; if both copies make
// it into the log, apply skips the second (dedupTable).
func (d *driver) proposeData(p *proposal) {
	p.last = d.now
	if err := d.rn.Propose(p.data); err != nil {
		d.n.log.Debug("meta: proposal dropped", "err", err)
	}
}

// resendAll sends every waiting proposal and ReadIndex again, in the
// order they were made: called when a new leader becomes known, so that
// those the old leader (or raft, without a leader) dropped need not wait
// for their retry (the state machine skips a proposal applied twice).
func (d *driver) resendAll() {
	for _, seq := range slices.Sorted(maps.Keys(d.waiters)) {
		d.proposeData(d.waiters[seq])
	}
	for _, id := range slices.Sorted(maps.Keys(d.reads)) {
		d.readIndex(d.reads[id])
	}
}

// read starts a caller's ReadIndex.
func (d *driver) read(r *readReq) {
	d.readSeq++
	r.id = d.readSeq
	d.reads[r.id] = r
	d.readIndex(r)
}

func (d *driver) readIndex(r *readReq) {
	r.last = d.now
	d.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, r.id))
}
