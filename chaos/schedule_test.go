package chaos

import (
	"reflect"
	"testing"
	"time"
)

func TestScheduleDependsOnlyOnSeed(t *testing.T) {
	a := NewSchedule(42, 3, 10*time.Second, allFaults, time.Second)
	b := NewSchedule(42, 3, 10*time.Second, allFaults, time.Second)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different schedules:\n%s\n%s", a, b)
	}
	if c := NewSchedule(43, 3, 10*time.Second, allFaults, time.Second); reflect.DeepEqual(a.Faults, c.Faults) {
		t.Fatalf("seeds 42 and 43 give the same schedule:\n%s", a)
	}
}

func TestScheduleShape(t *testing.T) {
	seen := map[FaultKind]bool{}
	for seed := int64(1); seed <= 50; seed++ {
		for _, nodes := range []int{1, 3, 5} {
			d := 8 * time.Second
			s := NewSchedule(seed, nodes, d, allFaults, time.Second)
			var total time.Duration
			for _, f := range s.Faults {
				seen[f.Kind] = true
				total += f.Hold + f.Gap
				if f.Hold < minHold || f.Gap < minGap || f.Gap > maxGap {
					t.Fatalf("seed %d: fault out of bounds: %v", seed, f)
				}
				if f.Kind == Stall && f.Hold < time.Second {
					t.Fatalf("seed %d: stall shorter than the stall hold: %v", seed, f)
				}
				for _, n := range f.Nodes {
					if n < 1 || n > uint64(nodes) {
						t.Fatalf("seed %d: node %d of %d: %v", seed, n, nodes, f)
					}
				}
				if f.Kind == Split && nodes > 1 && 2*len(f.Nodes) >= nodes {
					t.Fatalf("seed %d: split side %v is not a minority of %d", seed, f.Nodes, nodes)
				}
				for _, l := range f.Links {
					if l.From == l.To || l.Drop < 0 || l.Drop >= 1 {
						t.Fatalf("seed %d: bad link %+v", seed, l)
					}
				}
			}
			if total < d || total > d+maxHold+maxGap+2*time.Second {
				t.Fatalf("seed %d: schedule of %v for a run of %v:\n%s", seed, total, d, s)
			}
		}
	}
	for _, k := range allFaults {
		if !seen[k] {
			t.Errorf("fault %v never drawn", k)
		}
	}
}

func TestScheduleEmpty(t *testing.T) {
	if s := NewSchedule(1, 3, time.Minute, nil, 0); len(s.Faults) != 0 {
		t.Fatalf("no kinds, yet faults: %s", s)
	}
}

func TestFrameOffsets(t *testing.T) {
	seg := make([]byte, 24)
	frame := func(n int) {
		h := make([]byte, 16+n)
		h[0] = byte(n)
		seg = append(seg, h...)
	}
	frame(5)
	frame(7)
	got := frameOffsets(append(seg, 9, 0, 0)) // a torn header after them
	if want := []int64{24, 45, 68}; !reflect.DeepEqual(got, want) {
		t.Fatalf("frameOffsets = %v, want %v", got, want)
	}
}
