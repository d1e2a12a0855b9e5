package meta

import (
	"fmt"
	"slices"
)

// controller is the deterministic core of the controller, run by the raft
// leader's driver. It does no IO and reads no clock: time is the driver's
// tick count, passed in. It turns heartbeats and the applied State into
// commands to propose; every command it emits is checked again at apply
// (incarnations, partition epochs), so a decision made on a stale State or
// by a deposed leader is refused, never misapplied.
type controller struct {
	sessionTicks int64 // a node silent for longer is fenced
	graceTicks   int64 // at takeover, the least time a node gets to heartbeat
	retryTicks   int64 // a decision not applied by then is proposed again
	sessions     map[uint64]session
	inflight     map[string]int64 // decision key → tick proposed
}

// session is the controller's view of one node's liveness.
type session struct {
	inc  uint64 // incarnation the heartbeats came from
	last int64  // tick of the last heartbeat
}

// newController returns a controller that fences a node after
// sessionTicks of silence, grants at takeover at least graceTicks
// (0 < graceTicks <= sessionTicks) and proposes a decision again after
// retryTicks.
func newController(sessionTicks, graceTicks, retryTicks int64) *controller {
	return &controller{sessionTicks: sessionTicks, graceTicks: graceTicks, retryTicks: retryTicks,
		sessions: map[uint64]session{}, inflight: map[string]int64{}}
}

// takeover starts a new term of office. heard holds, per node, the tick
// this node last heard from it (a raft message or a heartbeat, in whatever
// role this node had then); prev is the raft leader this node last
// followed, 0 if none. An unfenced node's session runs on from when it was
// last heard, so that the election which made this node controller counts
// against the session of a node that died with the old controller, instead
// of a fresh session being added to it. Every unfenced node but prev also
// gets at least graceTicks from now to reach this controller: it
// heartbeated the old controller until it learnt of the new one. prev
// needs no grace: as leader it sent this node a raft message every tick,
// so its silence is known to the tick. A crash of the controller costs
// max(SessionTimeout, election) before its node is fenced, not election +
// SessionTimeout. A fenced node must heartbeat to be unfenced.
func (c *controller) takeover(s *State, now int64, heard map[uint64]int64, prev uint64) {
	clear(c.sessions)
	clear(c.inflight)
	floor := now + c.graceTicks - c.sessionTicks // expires graceTicks from now
	for id, n := range s.nodes {
		last := floor
		if t, ok := heard[id]; ok && (t > last || id == prev) {
			last = min(t, now)
		}
		if n.Fenced {
			last = now - c.sessionTicks - 1 // expired: must heartbeat anew
		}
		c.sessions[id] = session{inc: n.Incarnation, last: last}
	}
}

// heartbeat records a heartbeat of node id's incarnation inc. A heartbeat
// of an older incarnation than one already heard is ignored.
func (c *controller) heartbeat(id, inc uint64, now int64) {
	if s, ok := c.sessions[id]; ok && s.inc > inc {
		return
	}
	c.sessions[id] = session{inc: inc, last: now}
}

// alive reports whether node n has a live session. A session of a newer
// incarnation than n's (its registration is still in flight) counts.
func (c *controller) alive(n NodeInfo, now int64) bool {
	s, ok := c.sessions[n.ID]
	return ok && s.inc >= n.Incarnation && now-s.last <= c.sessionTicks
}

// decide returns the commands the controller wants applied now: fence
// nodes whose session expired, unfence fenced ones that heartbeat again,
// give offline partitions a leader, and hand leadership back to a preferred
// leader that is eligible and in the ISR. Decisions already proposed less
// than retryTicks ago are not repeated. The partitions are scanned only with
// scan set: the caller sets it when partitions or nodes changed since the
// last scan (and now and then to be safe); nodes are checked every time.
func (c *controller) decide(s *State, now int64, scan bool) []*command {
	var out []*command
	propose := func(key string, cmd *command) {
		if t, ok := c.inflight[key]; ok && now-t < c.retryTicks {
			return
		}
		c.inflight[key] = now
		out = append(out, cmd)
	}
	for k, t := range c.inflight {
		if now-t >= c.retryTicks {
			delete(c.inflight, k)
		}
	}
	fenced := map[uint64]bool{}  // as it will be once out is applied
	fencing := map[uint64]bool{} // fenced by this decision
	for _, id := range s.nodeIDs() {
		n := s.nodes[id]
		if s, ok := c.sessions[id]; !ok || s.inc < n.Incarnation {
			// Registered (anew) since we last heard: its session starts now.
			c.sessions[id] = session{inc: n.Incarnation, last: now}
		}
		alive := c.alive(n, now)
		switch {
		case !n.Fenced && !alive:
			fenced[id], fencing[id] = true, true
			propose(fmt.Sprintf("fence/%d/%d", id, n.Incarnation),
				&command{Op: opFence, Node: id, Incarnation: n.Incarnation})
		case n.Fenced && alive && c.sessions[id].inc == n.Incarnation:
			propose(fmt.Sprintf("unfence/%d/%d", id, n.Incarnation),
				&command{Op: opUnfence, Node: id, Incarnation: n.Incarnation})
		default:
			fenced[id] = n.Fenced
		}
	}
	if !scan {
		return out
	}
	eligible := func(id uint64) bool { return s.eligible(id) && !fenced[id] }
	for _, name := range sortedTopicNames(s) {
		t, _ := s.topics.get(name)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if slices.ContainsFunc(p.ISR, func(id uint64) bool { return fencing[id] }) {
				continue // the fence changes this partition: decide next time
			}
			if l := c.leaderFor(p, eligible); l != 0 {
				propose(fmt.Sprintf("elect/%s/%d/%d/%d/%d", name, t.ID, p.Partition, p.PartitionEpoch, l),
					&command{Op: opElectLeader, Topic: name, TopicID: t.ID, Partition: p.Partition,
						PartitionEpoch: p.PartitionEpoch, Leader: l})
			}
		}
	}
	return out
}

// leaderFor returns the leader p should have if it should change, else 0:
// the preferred leader when it is eligible and in the ISR, otherwise, for a
// partition without an eligible leader, the first eligible ISR member.
func (c *controller) leaderFor(p *Partition, eligible func(uint64) bool) uint64 {
	pref := p.Replicas[0]
	if p.Leader != pref && p.InISR(pref) && eligible(pref) {
		return pref
	}
	if p.Leader != 0 && eligible(p.Leader) {
		return 0
	}
	for _, r := range p.Replicas {
		if r != p.Leader && p.InISR(r) && eligible(r) {
			return r
		}
	}
	return 0
}
