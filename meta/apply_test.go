package meta

import (
	"errors"
	"slices"
	"testing"
)

// fsm applies commands in order, as the driver does, for pure tests.
type fsm struct {
	t     testing.TB
	s     *State
	offs  *offsetTable
	index uint64
	evs   []Event
}

func newFSM(t testing.TB, nodes ...uint64) *fsm {
	f := &fsm{t: t, s: emptyState(), offs: newOffsetTable()}
	for _, id := range nodes {
		f.ok(&command{Op: opRegister, Node: id, Nonce: id})
	}
	return f
}

func (f *fsm) do(c *command) result {
	f.index++
	next, evs, r := apply(f.s, f.index, c, f.offs)
	f.s = next
	f.evs = append(f.evs, evs...)
	return r
}

func (f *fsm) ok(c *command) result {
	f.t.Helper()
	r := f.do(c)
	if r.err != nil {
		f.t.Fatalf("op %d: %v", c.Op, r.err)
	}
	return r
}

func (f *fsm) part(topic string, p int32) Partition {
	f.t.Helper()
	pp, ok := f.s.Partition(topic, p)
	if !ok {
		f.t.Fatalf("no %s/%d", topic, p)
	}
	return *pp
}

func (f *fsm) inc(id uint64) uint64 { n, _ := f.s.Node(id); return n.Incarnation }

func TestApplyCreateTopicValidation(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	cases := []struct {
		name string
		cfg  TopicConfig
		want error
	}{
		{"", TopicConfig{Partitions: 1}, ErrInvalidArgument},
		{".", TopicConfig{Partitions: 1}, ErrInvalidArgument},
		{"..", TopicConfig{Partitions: 1}, ErrInvalidArgument},
		{"a/b", TopicConfig{Partitions: 1}, ErrInvalidArgument},
		{string(make([]byte, 250)), TopicConfig{Partitions: 1}, ErrInvalidArgument},
		{"ok", TopicConfig{Partitions: 0}, ErrInvalidArgument},
		{"ok", TopicConfig{Partitions: 1, ReplicationFactor: 4}, ErrNotEnoughNodes},
		{"ok", TopicConfig{Partitions: 1, MinInSyncReplicas: 4}, ErrInvalidArgument},
		{"ok", TopicConfig{Partitions: 1, RetentionBytes: -1}, ErrInvalidArgument},
		{"ok.A-z_9", TopicConfig{Partitions: 1}, nil},
		{"ok.A-z_9", TopicConfig{Partitions: 1}, ErrTopicExists},
	}
	for _, tc := range cases {
		cfg := tc.cfg
		r := f.do(&command{Op: opCreateTopic, Topic: tc.name, Config: &cfg})
		if !errors.Is(r.err, tc.want) || (tc.want == nil) != (r.err == nil) {
			t.Errorf("create %q %+v: %v, want %v", tc.name, tc.cfg, r.err, tc.want)
		}
	}
	tp, _ := f.s.Topic("ok.A-z_9")
	if tp.Config.ReplicationFactor != 3 || tp.Config.MinInSyncReplicas != 2 {
		t.Fatalf("defaults: %+v", tp.Config)
	}
}

func TestAssignBalanced(t *testing.T) {
	for _, tc := range []struct {
		nodes, parts, rf int
	}{{3, 3, 3}, {3, 6, 2}, {5, 10, 3}, {4, 7, 1}} {
		var nodes []uint64
		for i := 1; i <= tc.nodes; i++ {
			nodes = append(nodes, uint64(i))
		}
		for start := uint64(0); start < 3; start++ {
			ps := assign(nodes, int32(tc.parts), tc.rf, start)
			reps, leads := map[uint64]int{}, map[uint64]int{}
			for _, p := range ps {
				if len(p.Replicas) != tc.rf || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
					t.Fatalf("%+v: partition %+v", tc, p)
				}
				seen := map[uint64]bool{}
				for _, r := range p.Replicas {
					if seen[r] {
						t.Fatalf("%+v: replica twice in %v", tc, p.Replicas)
					}
					seen[r] = true
					reps[r]++
				}
				leads[p.Leader]++
			}
			spread := func(m map[uint64]int, total int) {
				lo, hi := total, 0
				for _, id := range nodes {
					lo, hi = min(lo, m[id]), max(hi, m[id])
				}
				if hi-lo > 1 {
					t.Fatalf("%+v start %d: unbalanced %v", tc, start, m)
				}
			}
			spread(reps, tc.parts*tc.rf)
			spread(leads, tc.parts)
		}
	}
}

func TestApplyFenceElectsFromISR(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 3}})
	before := f.part("t", 0)
	l := before.Leader
	f.ok(&command{Op: opFence, Node: l, Incarnation: f.inc(l)})
	p := f.part("t", 0)
	if p.Leader == l || p.Leader == 0 || p.LeaderEpoch != before.LeaderEpoch+1 || p.InISR(l) {
		t.Fatalf("after fence of %d: %+v", l, p)
	}
	if p.Leader != before.Replicas[1] {
		t.Fatalf("new leader %d, want next replica in order %d", p.Leader, before.Replicas[1])
	}
	// A fence of an old incarnation is refused.
	if r := f.do(&command{Op: opFence, Node: l, Incarnation: 99}); !errors.Is(r.err, ErrStaleEpoch) {
		t.Fatalf("stale fence: %v", r.err)
	}
}

func TestApplyLastISRMemberOfflineThenBack(t *testing.T) {
	f := newFSM(t, 1, 2)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1, ReplicationFactor: 2}})
	p := f.part("t", 0)
	a, b := p.Replicas[0], p.Replicas[1]
	f.ok(&command{Op: opFence, Node: b, Incarnation: f.inc(b)})
	if p = f.part("t", 0); !slices.Equal(p.ISR, []uint64{a}) || p.Leader != a {
		t.Fatalf("after fencing follower %d: %+v", b, p)
	}
	f.ok(&command{Op: opFence, Node: a, Incarnation: f.inc(a)})
	p = f.part("t", 0)
	if p.Leader != 0 || !slices.Equal(p.ISR, []uint64{a}) {
		t.Fatalf("last ISR member fenced: want offline with ISR [%d], got %+v", a, p)
	}
	// b is back, but not in the ISR: no unclean election.
	f.ok(&command{Op: opUnfence, Node: b, Incarnation: f.inc(b)})
	if p = f.part("t", 0); p.Leader != 0 {
		t.Fatalf("unclean election of %d: %+v", b, p)
	}
	f.ok(&command{Op: opUnfence, Node: a, Incarnation: f.inc(a)})
	if q := f.part("t", 0); q.Leader != a || q.LeaderEpoch <= p.LeaderEpoch {
		t.Fatalf("last ISR member back: %+v", q)
	}
}

func TestApplyAlterISR(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1}})
	p := f.part("t", 0)
	l := p.Leader
	shrunk := []uint64{p.Replicas[0], p.Replicas[1]}
	base := command{Op: opAlterISR, From: l, Topic: "t", LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}
	bad := []struct {
		mod  func(c *command)
		want error
	}{
		{func(c *command) { c.From = p.Replicas[1] }, ErrStaleEpoch},
		{func(c *command) { c.LeaderEpoch++ }, ErrStaleEpoch},
		{func(c *command) { c.PartitionEpoch-- }, ErrStaleEpoch},
		{func(c *command) { c.ISR = []uint64{p.Replicas[1]} }, ErrInvalidArgument},
		{func(c *command) { c.ISR = []uint64{l, 9} }, ErrInvalidArgument},
		{func(c *command) { c.ISR = []uint64{l, l} }, ErrInvalidArgument},
		{func(c *command) { c.Topic = "x" }, ErrUnknownTopic},
		{func(c *command) { c.Partition = 1 }, ErrUnknownPartition},
	}
	for i, tc := range bad {
		c := base
		c.ISR = shrunk
		tc.mod(&c)
		if r := f.do(&c); !errors.Is(r.err, tc.want) {
			t.Errorf("case %d: %v, want %v", i, r.err, tc.want)
		}
	}
	c := base
	c.ISR = []uint64{shrunk[1], shrunk[0]}
	r := f.ok(&c)
	if !slices.Equal(r.part.ISR, shrunk) || r.part.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("shrink: %+v", r.part)
	}
	// The same request again carries a stale partition epoch now.
	if r := f.do(&c); !errors.Is(r.err, ErrStaleEpoch) {
		t.Fatalf("replayed AlterISR: %v", r.err)
	}
	// A fenced replica may not join the ISR.
	out := p.Replicas[2]
	f.ok(&command{Op: opFence, Node: out, Incarnation: f.inc(out)})
	q := f.part("t", 0)
	c = command{Op: opAlterISR, From: l, Topic: "t", LeaderEpoch: q.LeaderEpoch, PartitionEpoch: q.PartitionEpoch, ISR: p.Replicas}
	if r := f.do(&c); !errors.Is(r.err, ErrInvalidArgument) {
		t.Fatalf("fenced replica joined the ISR: %v", r.err)
	}
}

func TestApplyRegisterEndsOldSession(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1}})
	p := f.part("t", 0)
	l := p.Leader
	r := f.ok(&command{Op: opRegister, Node: l, Nonce: 1000})
	if r.inc != 2 {
		t.Fatalf("incarnation %d", r.inc)
	}
	q := f.part("t", 0)
	if q.Leader == l || q.LeaderEpoch != p.LeaderEpoch+1 || q.InISR(l) {
		t.Fatalf("restarted leader kept its leadership: %+v", q)
	}
	// The same registration applied twice (a retried proposal) is one.
	if r := f.ok(&command{Op: opRegister, Node: l, Nonce: 1000}); r.inc != 2 || f.inc(l) != 2 {
		t.Fatalf("duplicate registration: %d", r.inc)
	}
}

func TestApplyDrainAndUnhealthy(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 3}})
	f.ok(&command{Op: opDrain, Node: 1, Incarnation: f.inc(1), Flag: true})
	for i := range int32(3) {
		if p := f.part("t", i); p.Leader == 1 || !p.InISR(1) {
			t.Fatalf("drained node 1: %+v", p)
		}
	}
	f.ok(&command{Op: opSetUnhealthy, Node: 2, Incarnation: f.inc(2), Flag: true})
	for i := range int32(3) {
		if p := f.part("t", i); p.Leader != 3 {
			t.Fatalf("only node 3 is eligible: %+v", p)
		}
	}
	f.ok(&command{Op: opSetUnhealthy, Node: 3, Incarnation: f.inc(3), Flag: true})
	for i := range int32(3) {
		if p := f.part("t", i); p.Leader != 3 {
			t.Fatalf("no eligible node left: leadership must stay put: %+v", p)
		}
	}
	if r := f.do(&command{Op: opCreateTopic, Topic: "u", Config: &TopicConfig{Partitions: 1}}); !errors.Is(r.err, ErrNotEnoughNodes) {
		t.Fatalf("create with no live node: %v", r.err)
	}
}

// A node fenced or registering again leaves no ISR whose other members
// all drain: replication leaves draining members out of the high
// watermark, so they may lack committed records, and one left as the only
// member would be elected once back. Here node 1 committed alone while
// node 2 drained; node 1 must stay in the ISR through its fence and its
// restart, and node 2 must not lead.
func TestEvictKeepsLastCountedMember(t *testing.T) {
	for _, op := range []string{"fence", "register"} {
		t.Run(op, func(t *testing.T) {
			f := newFSM(t, 1, 2, 3)
			f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1, ReplicationFactor: 2, MinInSyncReplicas: 1}})
			if p := f.part("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []uint64{1, 2}) {
				t.Fatalf("setup: %+v", p)
			}
			f.ok(&command{Op: opDrain, Node: 2, Incarnation: f.inc(2), Flag: true})
			if op == "fence" {
				f.ok(&command{Op: opFence, Node: 1, Incarnation: f.inc(1)})
			} else {
				f.ok(&command{Op: opRegister, Node: 1, Nonce: 77})
			}
			if p := f.part("t", 0); !p.InISR(1) || p.Leader == 2 {
				t.Fatalf("after the %s of node 1: %+v", op, p)
			}
			f.ok(&command{Op: opRegister, Node: 2, Nonce: 99})
			if p := f.part("t", 0); !p.InISR(1) || p.Leader == 2 {
				t.Fatalf("after node 2 registered again: %+v", p)
			}
		})
	}
}

func TestApplyOffsets(t *testing.T) {
	f := newFSM(t, 1)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 2}})
	f.ok(&command{Op: opCommitOffset, Group: "g", Topic: "t", Partition: 1, Offset: 7})
	if o, ok := f.offs.get("g", "t", 1); !ok || o != 7 {
		t.Fatal(o, ok)
	}
	for _, c := range []command{
		{Op: opCommitOffset, Group: "", Topic: "t", Offset: 1},
		{Op: opCommitOffset, Group: "g", Topic: "t", Offset: -1},
		{Op: opCommitOffset, Group: "g", Topic: "t", Partition: 2},
		{Op: opCommitOffset, Group: "g", Topic: "x"},
	} {
		if r := f.do(&c); r.err == nil {
			t.Fatalf("accepted %+v", c)
		}
	}
	f.ok(&command{Op: opDeleteTopic, Topic: "t"})
	if _, ok := f.offs.get("g", "t", 1); ok {
		t.Fatal("offset survived its topic")
	}
}

func TestApplyDoesNotMutatePreviousState(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 2}})
	old := f.s
	snap := encodeSnapshot(old, newOffsetTable())
	f.ok(&command{Op: opFence, Node: 1, Incarnation: 1})
	f.ok(&command{Op: opDeleteTopic, Topic: "t"})
	if got := encodeSnapshot(old, newOffsetTable()); string(got) != string(snap) {
		t.Fatalf("an older State changed:\n%s\n%s", snap, got)
	}
}

func TestApplyDedupRetries(t *testing.T) {
	f := newFSM(t, 1)
	f.ok(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 1}})
	commit := func(seq uint64, off int64) result {
		return f.do(&command{Op: opCommitOffset, From: 1, Session: 9, Seq: seq, Group: "g", Topic: "t", Offset: off})
	}
	commit(5, 5)
	commit(6, 6)
	if r := commit(5, 5); !r.dup {
		t.Fatal("retried request applied twice")
	}
	if o, _ := f.offs.get("g", "t", 0); o != 6 {
		t.Fatalf("a late retry moved the offset back to %d", o)
	}
	if r := commit(4, 4); r.dup { // never applied: not a duplicate
		t.Fatal("fresh request taken for a duplicate")
	}
	commit(dedupWindow+10, 7)
	if r := commit(9, 9); !r.dup {
		t.Fatal("request older than the window applied")
	}
	// The window survives a snapshot.
	s, offs, err := decodeSnapshot(encodeSnapshot(f.s, f.offs))
	if err != nil {
		t.Fatal(err)
	}
	f.s, f.offs = s, offs
	if r := commit(6, 6); !r.dup {
		t.Fatal("dedup window lost in the snapshot")
	}
	// A new registration of node 1 forgets its earlier Opens.
	f.ok(&command{Op: opRegister, Node: 1, Nonce: 10})
	if len(f.offs.dedup) != 0 {
		t.Fatalf("dedup windows of an old incarnation kept: %d", len(f.offs.dedup))
	}
}

// TopicDeleted tells a topic created and deleted from one that exists or
// was not created yet.
func TestTopicDeleted(t *testing.T) {
	f := newFSM(t, 1, 2, 3)
	f.ok(&command{Op: opCreateTopic, Topic: "x", Config: &TopicConfig{Partitions: 1}})
	x, _ := f.s.Topic("x")
	if f.s.TopicDeleted(x.ID) || f.s.TopicDeleted(f.s.Index()+1) || f.s.TopicDeleted(0) {
		t.Fatal("an existing, a future or no topic taken for deleted")
	}
	f.ok(&command{Op: opDeleteTopic, Topic: "x"})
	f.ok(&command{Op: opCreateTopic, Topic: "x", Config: &TopicConfig{Partitions: 1}})
	if !f.s.TopicDeleted(x.ID) {
		t.Fatal("a deleted topic not taken for deleted, after one of its name was created again")
	}
}
