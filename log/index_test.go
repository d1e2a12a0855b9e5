package log

import (
	"slices"
	"testing"
)

func TestOffsetIndex(t *testing.T) {
	x := offsetIndex{interval: 100}
	// batches of 10 records, 40 bytes each: an entry every 3rd batch.
	for i := range int64(10) {
		x.add(i*10, i*40, 1000+i)
	}
	want := []indexEntry{{0, 0, 1002}, {30, 120, 1005}, {60, 240, 1008}, {90, 360, 1009}}
	if !slices.Equal(x.entries, want) {
		t.Fatalf("entries %v, want %v", x.entries, want)
	}
	for _, tc := range []struct {
		off  int64
		pos  int64
		find bool
	}{{-1, 0, false}, {0, 0, true}, {29, 0, true}, {30, 120, true}, {75, 240, true}, {500, 360, true}} {
		e, ok := x.lookup(tc.off)
		if ok != tc.find || (ok && e.Pos != tc.pos) {
			t.Errorf("lookup(%d) = %v %v, want pos %d %v", tc.off, e, ok, tc.pos, tc.find)
		}
	}
	if p := x.prefixOlderThan(1003, 400); p != 120 {
		t.Errorf("prefixOlderThan(1003) = %d, want 120", p)
	}
	if p := x.prefixOlderThan(2000, 400); p != 400 {
		t.Errorf("prefixOlderThan(2000) = %d, want the end", p)
	}

	y := offsetIndex{interval: 100, entries: slices.Clone(x.entries)}
	y.truncateFromEnd(240)
	if !slices.Equal(y.entries, want[:2]) {
		t.Errorf("truncateFromEnd(240): %v", y.entries)
	}
	y.truncateFromStart(160, 40) // inside the entry at 120
	if !slices.Equal(y.entries, []indexEntry{{40, 160, 1005}}) {
		t.Errorf("truncateFromStart(160): %v", y.entries)
	}
	z := offsetIndex{interval: 100, entries: slices.Clone(x.entries)}
	z.truncateFromStart(240, 60)
	if !slices.Equal(z.entries, want[2:]) {
		t.Errorf("truncateFromStart(240): %v", z.entries)
	}
}
