package log

import (
	"errors"
	"slices"
	"testing"
)

func cacheOf(pairs ...int64) *epochCache {
	c := &epochCache{}
	for i := 0; i < len(pairs); i += 2 {
		if err := c.assign(int32(pairs[i]), pairs[i+1]); err != nil {
			panic(err)
		}
	}
	return c
}

func TestEndOffsetForEpoch(t *testing.T) {
	c := cacheOf(2, 10, 4, 30, 7, 60) // epoch 2 from 10, 4 from 30, 7 from 60
	const leo = 80
	cases := []struct {
		ask       int32
		epoch     int32
		endOffset int64
	}{
		{UndefinedEpoch, UndefinedEpoch, UndefinedOffset},
		{0, 0, 10},  // below the first epoch: the asked epoch, first start offset
		{2, 2, 30},  // a known epoch: the next epoch's start
		{3, 2, 30},  // unknown, between: the epoch below, the next start
		{4, 4, 60},  //
		{6, 4, 60},  //
		{7, 7, leo}, // the latest: the log end
		{8, UndefinedEpoch, UndefinedOffset},
	}
	for _, tc := range cases {
		e, off := c.endOffsetFor(tc.ask, leo)
		if e != tc.epoch || off != tc.endOffset {
			t.Errorf("endOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.ask, e, off, tc.epoch, tc.endOffset)
		}
	}
	if e, off := (&epochCache{}).endOffsetFor(3, 5); e != UndefinedEpoch || off != UndefinedOffset {
		t.Errorf("empty cache: (%d, %d)", e, off)
	}
}

func TestEpochAssign(t *testing.T) {
	c := cacheOf(1, 0)
	if err := c.assign(1, 50); err != nil {
		t.Fatalf("same epoch: %v", err)
	}
	if err := c.assign(0, 50); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("lower epoch: %v", err)
	}
	if err := c.assign(3, 20); err != nil {
		t.Fatal(err)
	}
	if err := c.assign(4, 10); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("start before the latest start: %v", err)
	}
	if err := c.assign(-2, 30); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("negative epoch: %v", err)
	}
	want := []EpochEntry{{1, 0}, {3, 20}}
	if !slices.Equal(c.entries, want) {
		t.Fatalf("entries %v, want %v", c.entries, want)
	}
	if c.epochAt(19) != 1 || c.epochAt(20) != 3 || (&epochCache{}).epochAt(0) != UndefinedEpoch {
		t.Fatal("epochAt")
	}
}

func TestEpochTruncate(t *testing.T) {
	cases := []struct {
		name  string
		do    func(c *epochCache)
		after []EpochEntry
	}{
		{"end above all", func(c *epochCache) { c.truncateFromEnd(100) }, []EpochEntry{{2, 10}, {4, 30}, {7, 60}}},
		{"end at a start", func(c *epochCache) { c.truncateFromEnd(60) }, []EpochEntry{{2, 10}, {4, 30}}},
		{"end inside", func(c *epochCache) { c.truncateFromEnd(31) }, []EpochEntry{{2, 10}, {4, 30}}},
		{"end below all", func(c *epochCache) { c.truncateFromEnd(10) }, []EpochEntry{}},
		{"start below all", func(c *epochCache) { c.truncateFromStart(5) }, []EpochEntry{{2, 10}, {4, 30}, {7, 60}}},
		{"start inside", func(c *epochCache) { c.truncateFromStart(40) }, []EpochEntry{{4, 40}, {7, 60}}},
		{"start at a start", func(c *epochCache) { c.truncateFromStart(60) }, []EpochEntry{{7, 60}}},
		{"start past all", func(c *epochCache) { c.truncateFromStart(90) }, []EpochEntry{{7, 90}}},
	}
	for _, tc := range cases {
		c := cacheOf(2, 10, 4, 30, 7, 60)
		tc.do(c)
		if !slices.Equal(c.entries, tc.after) {
			t.Errorf("%s: %v, want %v", tc.name, c.entries, tc.after)
		}
	}
}
