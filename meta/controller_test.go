package meta

import (
	"fmt"
	"testing"
)

// scenario drives the controller core against an fsm: each step advances
// the tick, delivers heartbeats, asks for decisions and applies them.
type scenario struct {
	*fsm
	c   *controller
	now int64
}

func newScenario(t *testing.T, nodes ...uint64) *scenario {
	s := &scenario{fsm: newFSM(t, nodes...), c: newController(20, 10, 20)}
	s.c.takeover(s.s, 0, nil, 0)
	return s
}

// run advances ticks one by one; each tick the nodes in alive heartbeat
// and every decision is applied at once.
func (s *scenario) run(ticks int, alive ...uint64) {
	for range ticks {
		s.now++
		for _, id := range alive {
			s.c.heartbeat(id, s.inc(id), s.now)
		}
		for _, c := range s.c.decide(s.s, s.now, true) {
			s.do(c)
		}
	}
}

func (s *scenario) fenced(id uint64) bool { n, _ := s.s.Node(id); return n.Fenced }

// TestControllerTakeoverCountsFromLastHeard: a new controller runs each
// node's session on from the last time it heard from the node, so that the
// election that made it controller does not add to the session of a node
// that died with the old controller. The old controller (the leader it
// followed, heard every tick until it died) is fenced at
// max(SessionTimeout, election) after it died, not at election +
// SessionTimeout; another dead node at max(SessionTimeout, election +
// grace). A live node is not fenced: one heard during the election keeps a
// full session from then, one not heard gets the grace.
func TestControllerTakeoverCountsFromLastHeard(t *testing.T) {
	const session, grace = 20, 10
	for _, election := range []int64{1, 5, 10, 11, 15, 20, 40} {
		t.Run(fmt.Sprintf("election=%d", election), func(t *testing.T) {
			// Node 2, the old controller, and node 4 died at tick 0, the
			// last tick this node heard from them; node 1 (this one), 3
			// and 5 live. Node 3 was heard during the election, and only
			// then; node 5 not at all.
			f := newFSM(t, 1, 2, 3, 4, 5)
			c := newController(session, grace, 2*session)
			c.takeover(f.s, election, map[uint64]int64{1: election, 2: 0, 3: election - 1, 4: 0}, 2)
			want := map[uint64]int64{2: max(session, election) + 1, 4: max(session, election+grace) + 1}
			fencedAt := map[uint64]int64{}
			for now := election + 1; now <= election+3*session; now++ {
				c.heartbeat(1, f.inc(1), now)
				if now >= election-1+session {
					c.heartbeat(3, f.inc(3), now) // at the last tick of its session
				}
				if now >= election+grace {
					c.heartbeat(5, f.inc(5), now) // at the last tick of its grace
				}
				for _, cmd := range c.decide(f.s, now, true) {
					if cmd.Op == opFence {
						fencedAt[cmd.Node] = now
					}
					f.do(cmd)
				}
			}
			for id, w := range want {
				if fencedAt[id] != w || w >= election+session+1 {
					t.Errorf("dead node %d fenced at tick %d, want %d (session %d, election %d, grace %d; "+
						"a fresh session would fence at %d)", id, fencedAt[id], w, session, election, grace, election+session+1)
				}
			}
			for _, id := range []uint64{1, 3, 5} {
				if at, ok := fencedAt[id]; ok {
					t.Errorf("live node %d fenced at tick %d", id, at)
				}
			}
		})
	}
}

// TestControllerTakeoverGrace: a node the new controller never heard from
// has graceTicks from the takeover to heartbeat; one that does is not
// fenced, one that does not is fenced on the next tick. A node that was
// fenced stays so until it heartbeats.
func TestControllerTakeoverGrace(t *testing.T) {
	s := &scenario{fsm: newFSM(t, 1, 2, 3, 4), c: newController(20, 10, 20), now: 100}
	s.do(&command{Op: opFence, Node: 4, Incarnation: s.inc(4)})
	s.c.takeover(s.s, s.now, nil, 0)
	s.run(10)
	for _, id := range []uint64{1, 2, 3} {
		if s.fenced(id) {
			t.Fatalf("node %d fenced within the grace of a takeover", id)
		}
	}
	s.run(1, 1, 2) // 1 and 2 heartbeat at the last tick of the grace; 3 does not
	if s.fenced(1) || s.fenced(2) || !s.fenced(3) {
		t.Fatalf("after the grace: fenced 1 %v 2 %v 3 %v, want only 3", s.fenced(1), s.fenced(2), s.fenced(3))
	}
	s.run(15, 1, 2) // a full session since their heartbeat: not fenced
	if s.fenced(1) || s.fenced(2) || !s.fenced(4) {
		t.Fatalf("heartbeating nodes fenced, or the fenced node unfenced without a heartbeat")
	}
	s.run(1, 1, 2, 4)
	if s.fenced(4) {
		t.Fatal("fenced node heartbeats, still fenced")
	}
}

func TestControllerFenceElectUnfencePreferred(t *testing.T) {
	s := newScenario(t, 1, 2, 3)
	s.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 3}})
	p0 := s.part("t", 0)
	victim := p0.Leader
	var others []uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != victim {
			others = append(others, id)
		}
	}
	s.run(21, others...)
	if !s.fenced(victim) {
		t.Fatal("silent node not fenced")
	}
	p := s.part("t", 0)
	if p.Leader == victim || p.Leader == 0 || p.LeaderEpoch != p0.LeaderEpoch+1 || p.InISR(victim) {
		t.Fatalf("after fence: %+v", p)
	}
	// It comes back: unfenced, but not leader until it is in the ISR.
	s.run(1, 1, 2, 3)
	if s.fenced(victim) {
		t.Fatal("heartbeating node still fenced")
	}
	if s.part("t", 0).Leader == victim {
		t.Fatal("leadership back to a node outside the ISR")
	}
	q := s.part("t", 0)
	s.ok(&command{Op: opAlterISR, From: q.Leader, Topic: "t", LeaderEpoch: q.LeaderEpoch,
		PartitionEpoch: q.PartitionEpoch, ISR: q.Replicas})
	s.run(1, 1, 2, 3)
	if r := s.part("t", 0); r.Leader != victim || r.LeaderEpoch != q.LeaderEpoch+1 {
		t.Fatalf("preferred leader back in the ISR did not regain leadership: %+v", r)
	}
}

func TestControllerNoUncleanElection(t *testing.T) {
	s := newScenario(t, 1, 2)
	s.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1, ReplicationFactor: 2}})
	p := s.part("t", 0)
	a, b := p.Replicas[0], p.Replicas[1]
	s.run(21, a) // b silent: fenced, leaves the ISR
	s.run(21)    // a silent too: the partition goes offline
	if q := s.part("t", 0); q.Leader != 0 || len(q.ISR) != 1 || q.ISR[0] != a {
		t.Fatalf("want offline with ISR [%d]: %+v", a, q)
	}
	s.run(5, b) // b returns but was not in the ISR
	if q := s.part("t", 0); q.Leader != 0 {
		t.Fatalf("unclean election: %+v", q)
	}
	s.run(1, a, b) // the last ISR member returns
	if q := s.part("t", 0); q.Leader != a {
		t.Fatalf("last ISR member back, not leader: %+v", q)
	}
}

func TestControllerNewIncarnationEndsSession(t *testing.T) {
	s := newScenario(t, 1, 2, 3)
	s.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1}})
	p := s.part("t", 0)
	s.run(5, 1, 2, 3)
	// The leader restarts fast, well inside its session.
	s.ok(&command{Op: opRegister, Node: p.Leader, Nonce: 77})
	q := s.part("t", 0)
	if q.Leader == p.Leader || q.LeaderEpoch <= p.LeaderEpoch {
		t.Fatalf("restart inside the session kept the leadership: %+v", q)
	}
	// Heartbeats of the old incarnation do not keep the new one alive, and
	// do not confuse the controller.
	s.c.heartbeat(p.Leader, 1, s.now)
	s.run(5, 1, 2, 3)
	if s.fenced(p.Leader) {
		t.Fatal("new incarnation fenced while heartbeating")
	}
}

func TestControllerDoesNotRepeatInflightDecisions(t *testing.T) {
	s := newScenario(t, 1, 2, 3)
	s.now = 30
	first := s.c.decide(s.s, s.now, true)
	if len(first) != 3 {
		t.Fatalf("want 3 fences, got %d", len(first))
	}
	if again := s.c.decide(s.s, s.now+1, true); len(again) != 0 {
		t.Fatalf("repeated %d in-flight decisions", len(again))
	}
	if later := s.c.decide(s.s, s.now+20, true); len(later) != 3 {
		t.Fatalf("not retried after retryTicks: %d", len(later))
	}
}
