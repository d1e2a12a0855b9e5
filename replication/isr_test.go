package replication

import (
	"slices"
	"testing"
)

func TestHighWatermark(t *testing.T) {
	ends := map[uint64]int64{2: 7, 3: 5}
	end := func(id uint64) (int64, bool) { e, ok := ends[id]; return e, ok }
	tests := []struct {
		name      string
		leaderEnd int64
		isr       []uint64
		minISR    int
		want      int64
		wantOK    bool
	}{
		{"leader alone", 10, []uint64{1}, 1, 10, true},
		{"min over ISR", 10, []uint64{1, 2, 3}, 2, 5, true},
		{"follower outside ISR ignored", 10, []uint64{1, 2}, 2, 7, true},
		{"never above leader end", 6, []uint64{1, 2}, 1, 6, true},
		{"ISR below min: no advance", 10, []uint64{1, 2}, 3, 0, false},
		{"unknown member: no advance", 10, []uint64{1, 4}, 1, 0, false},
		{"empty ISR with min 0 is the leader's end", 10, nil, 0, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := highWatermark(1, tt.leaderEnd, tt.isr, tt.minISR, end)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("highWatermark = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestObserveFetch(t *testing.T) {
	var f followerState
	// Caught up: has everything the leader has.
	f.observeFetch(10, 100, 100)
	if f.caughtUpAt != 10 || f.logEnd != 100 {
		t.Fatalf("after caught-up fetch: %+v", f)
	}
	// Behind the leader now (leader appended 100..150 meanwhile), but has
	// all the leader had at the previous fetch: caught up as of then.
	f.observeFetch(20, 100, 150)
	if f.caughtUpAt != 10 {
		t.Fatalf("caughtUpAt = %d, want 10", f.caughtUpAt)
	}
	f.observeFetch(30, 150, 200)
	if f.caughtUpAt != 20 {
		t.Fatalf("one round trip behind a busy leader: caughtUpAt = %d, want 20", f.caughtUpAt)
	}
	// Stuck: does not reach what the leader had at the previous fetch.
	f.observeFetch(40, 160, 250)
	f.observeFetch(50, 170, 300)
	if f.caughtUpAt != 20 {
		t.Fatalf("stuck follower: caughtUpAt = %d, want 20", f.caughtUpAt)
	}
	if f.logEnd != 170 {
		t.Fatalf("logEnd = %d, want 170", f.logEnd)
	}
	// A stale fetch (reordered) never moves logEnd back.
	f.observeFetch(60, 120, 300)
	if f.logEnd != 170 {
		t.Fatalf("logEnd went back to %d", f.logEnd)
	}
}

func TestLaggingReplicas(t *testing.T) {
	states := map[uint64]followerState{
		2: {id: 2, caughtUpAt: 95},
		3: {id: 3, caughtUpAt: 50},
	}
	state := func(id uint64) (followerState, bool) { s, ok := states[id]; return s, ok }
	tests := []struct {
		name     string
		now      int64
		ledSince int64
		isr      []uint64
		want     []uint64
	}{
		{"fresh followers stay", 100, 0, []uint64{1, 2}, nil},
		{"stale follower leaves", 100, 0, []uint64{1, 2, 3}, []uint64{3}},
		{"leader never lags", 1000, 0, []uint64{1}, nil},
		{"unknown member gets maxLag from takeover", 100, 90, []uint64{1, 4}, nil},
		{"unknown member lags after maxLag", 200, 90, []uint64{1, 4}, []uint64{4}},
		{"new leader does not blame old silence", 100, 80, []uint64{1, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := laggingReplicas(tt.now, 30, tt.ledSince, 1, tt.isr, state)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("laggingReplicas = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCanJoinISR(t *testing.T) {
	tests := []struct {
		logEnd, hw, epochStart, caughtUpAt int64
		want                               bool
	}{
		{10, 10, 5, 100, true},
		{9, 10, 5, 100, false},
		{10, 8, 12, 100, false}, // has the high watermark, not the epoch's start
		{12, 8, 12, 100, true},
		{10, 10, 5, 89, false}, // not caught up within maxLag: would lag at once
		{10, 10, 5, 90, true},
	}
	for _, tt := range tests {
		f := followerState{logEnd: tt.logEnd, caughtUpAt: tt.caughtUpAt}
		if got := canJoinISR(f, tt.hw, tt.epochStart, 100, 10); got != tt.want {
			t.Errorf("canJoinISR(logEnd %d, hw %d, epochStart %d, caught up at %d, now 100, maxLag 10) = %v, want %v",
				tt.logEnd, tt.hw, tt.epochStart, tt.caughtUpAt, got, tt.want)
		}
	}
}
