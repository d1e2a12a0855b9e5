package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// FaultKind is one kind of fault the nemesis injects.
type FaultKind uint8

const (
	// Kill stops a node as a crash does (no handover; its files keep what
	// the FS holds) and restarts it after Hold.
	Kill FaultKind = iota + 1
	// Crash makes a node's file system lose what was not synced (with Torn,
	// part of the last unsynced write survives, possibly garbled), stops
	// the node and restarts it after Hold.
	Crash
	// CrashAll crashes every node at once, as Crash does, and restarts them
	// all after Hold.
	CrashAll
	// Isolate cuts a node off from every other, both ways, for Hold.
	Isolate
	// IsolateLeader isolates the partition's leader, resolved when the
	// fault starts, for Hold.
	IsolateLeader
	// KillLeader kills the partition's leader, resolved when the fault
	// starts, and restarts it after Hold.
	KillLeader
	// Split partitions the network into a minority (Nodes) and a majority
	// for Hold.
	Split
	// Links drops and delays messages on some directed links for Hold.
	Links
	// Stall blocks a node's syncs for Hold (longer than the sync timeout:
	// its writes fail with a stalled storage), then releases them.
	Stall
	// Corrupt stops a node, flips one bit in one of its wal segments, and
	// restarts it after Hold.
	Corrupt
)

var faultNames = [...]string{
	Kill: "kill", Crash: "crash", CrashAll: "crash-all", Isolate: "isolate",
	IsolateLeader: "isolate-leader", KillLeader: "kill-leader", Split: "split",
	Links: "links", Stall: "stall", Corrupt: "corrupt",
}

// String returns the fault's short name.
func (k FaultKind) String() string {
	if int(k) < len(faultNames) && faultNames[k] != "" {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

// Link is the faults of one directed link.
type Link struct {
	From, To uint64
	Drop     float64       // probability a message is lost
	Delay    time.Duration // added to each message
}

// Fault is one step of a schedule: a fault held for Hold, then healed,
// then Gap of quiet before the next one.
type Fault struct {
	Kind  FaultKind
	Nodes []uint64 // the nodes hit (Split: the minority side); empty for *Leader and CrashAll
	Torn  bool     // Crash, CrashAll: a torn last write
	Links []Link   // Links
	Seed  uint64   // Crash, CrashAll: tearing; Corrupt: which bit
	Hold  time.Duration
	Gap   time.Duration
}

// String describes the fault in one line.
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(f.Kind.String())
	if len(f.Nodes) > 0 {
		fmt.Fprintf(&b, " %v", f.Nodes)
	}
	if f.Torn {
		b.WriteString(" torn")
	}
	for _, l := range f.Links {
		fmt.Fprintf(&b, " %d->%d(drop %.2f, delay %v)", l.From, l.To, l.Drop, l.Delay)
	}
	if f.Kind == Crash || f.Kind == CrashAll || f.Kind == Corrupt {
		fmt.Fprintf(&b, " seed %d", f.Seed)
	}
	fmt.Fprintf(&b, " hold %v gap %v", f.Hold, f.Gap)
	return b.String()
}

// Schedule is the sequence of faults of one run, derived from its seed
// only: the same seed, node count, duration and kinds give the same
// schedule.
type Schedule struct {
	Seed   int64
	Nodes  int
	Faults []Fault
}

// String lists the faults, one per line.
func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule of seed %d, %d nodes, %d faults:", s.Seed, s.Nodes, len(s.Faults))
	var at time.Duration
	for i, f := range s.Faults {
		fmt.Fprintf(&b, "\n  %2d at %-8v %s", i, at, f)
		at += f.Hold + f.Gap
	}
	return b.String()
}

// Bounds of the schedule's durations.
const (
	minHold = 200 * time.Millisecond
	maxHold = 1500 * time.Millisecond
	minGap  = 100 * time.Millisecond
	maxGap  = 600 * time.Millisecond
)

// NewSchedule draws faults of the given kinds for nodes nodes (1..nodes)
// from seed, until their holds and gaps fill duration. stallHold is the
// least Hold of a Stall (above the nodes' sync timeout).
func NewSchedule(seed int64, nodes int, duration time.Duration, kinds []FaultKind, stallHold time.Duration) Schedule {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973)) // "nemesis"
	s := Schedule{Seed: seed, Nodes: nodes}
	if len(kinds) == 0 || nodes < 1 {
		return s
	}
	var total time.Duration
	for total < duration {
		f := drawFault(rng, nodes, kinds[rng.IntN(len(kinds))], stallHold)
		s.Faults = append(s.Faults, f)
		total += f.Hold + f.Gap
	}
	return s
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

func drawFault(rng *rand.Rand, nodes int, kind FaultKind, stallHold time.Duration) Fault {
	f := Fault{Kind: kind, Hold: between(rng, minHold, maxHold), Gap: between(rng, minGap, maxGap)}
	node := uint64(rng.IntN(nodes) + 1)
	switch kind {
	case Kill, Isolate, Corrupt:
		f.Nodes = []uint64{node}
	case Crash:
		f.Nodes = []uint64{node}
		f.Torn = rng.IntN(2) == 0
	case CrashAll:
		f.Torn = rng.IntN(2) == 0
	case Split:
		perm := rng.Perm(nodes)
		for _, i := range perm[:(nodes-1)/2] {
			f.Nodes = append(f.Nodes, uint64(i+1))
		}
		if len(f.Nodes) == 0 { // one node: nothing to split from
			f.Nodes = []uint64{node}
		}
	case Links:
		for i := 0; nodes > 1 && i < 1+rng.IntN(3); i++ {
			from := uint64(rng.IntN(nodes) + 1)
			to := uint64(rng.IntN(nodes-1) + 1) // any node but from
			if to >= from {
				to++
			}
			f.Links = append(f.Links, Link{From: from, To: to,
				Drop:  float64(rng.IntN(60)) / 100,
				Delay: time.Duration(rng.IntN(50)) * time.Millisecond})
		}
	case Stall:
		f.Nodes = []uint64{node}
		f.Hold = max(f.Hold, stallHold+between(rng, 0, 500*time.Millisecond))
	}
	f.Seed = rng.Uint64()
	return f
}
