package meta

import (
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
	s := &scenario{fsm: newFSM(t, nodes...), c: newController(20, 20)}
	s.c.takeover(s.s, 0)
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

func TestControllerTakeoverFencesNobody(t *testing.T) {
	s := newScenario(t, 1, 2, 3)
	// No heartbeats heard yet, but every node got a fresh session.
	s.run(20)
	for _, id := range []uint64{1, 2, 3} {
		if s.fenced(id) {
			t.Fatalf("node %d fenced within its first session", id)
		}
	}
	s.run(1)
	for _, id := range []uint64{1, 2, 3} {
		if !s.fenced(id) {
			t.Fatalf("node %d silent past SessionTimeout, not fenced", id)
		}
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
