package replication

// The leader's bookkeeping of its followers, as pure functions over plain
// values: no clock, no IO. Time is whatever monotonic unit the caller uses
// (ticks in the core, nanoseconds in a driver); only differences matter.

// followerState is what a partition leader knows of one follower replica.
type followerState struct {
	id uint64
	// logEnd is the follower's log end offset as its last fetch showed it:
	// everything below it is on the follower (durable under SyncAlways).
	logEnd int64
	// caughtUpAt is the last time the follower was known to hold everything
	// the leader held (Kafka's lastCaughtUpTime). A follower that falls
	// behind keeps its old value and so ages out of the ISR.
	caughtUpAt int64
	// lastFetchAt and leaderEndAtLastFetch remember the previous fetch, so
	// a follower that is always one round trip behind a busy leader still
	// counts as caught up (see observeFetch).
	lastFetchAt          int64
	leaderEndAtLastFetch int64
}

// observeFetch records a fetch from the follower at time now, which shows
// the follower's log end offset fetchEnd while the leader's log end is
// leaderEnd. Kafka's rule: the follower is caught up as of now if it has all
// the leader has; it is caught up as of the previous fetch if it now has all
// the leader had then. Without the second rule a follower of a leader that
// appends continuously would never be "caught up" and would be shrunk out.
func (f *followerState) observeFetch(now, fetchEnd, leaderEnd int64) {
	switch {
	case fetchEnd >= leaderEnd:
		f.caughtUpAt = now
	case fetchEnd >= f.leaderEndAtLastFetch:
		f.caughtUpAt = max(f.caughtUpAt, f.lastFetchAt)
	}
	if fetchEnd > f.logEnd {
		f.logEnd = fetchEnd
	}
	f.lastFetchAt = now
	f.leaderEndAtLastFetch = leaderEnd
}

// highWatermark returns the high watermark the leader may publish: the
// smallest log end offset over the ISR, the leader's own end included.
// ok is false, and the high watermark must not move, while the ISR is
// smaller than minISR or a member's log end is unknown (a member the leader
// has not heard from since it took over).
//
// The result never exceeds leaderEnd. Callers keep the high watermark
// monotonic: a result below the current one is ignored, not applied.
func highWatermark(leader uint64, leaderEnd int64, isr []uint64, minISR int, end func(id uint64) (int64, bool)) (hw int64, ok bool) {
	if len(isr) < minISR {
		return 0, false
	}
	hw = leaderEnd
	for _, id := range isr {
		if id == leader {
			continue
		}
		e, known := end(id)
		if !known {
			return 0, false
		}
		hw = min(hw, e)
	}
	return hw, true
}

// laggingReplicas returns the ISR members, the leader excepted, that have not
// been caught up for longer than maxLag as of now: the followers the leader
// asks the controller to shrink out of the ISR. A member with no state is
// lagging only once the leader has led for maxLag (ledSince), so a new
// leader gives every follower a full maxLag to make its first fetch.
func laggingReplicas(now, maxLag, ledSince int64, leader uint64, isr []uint64, state func(id uint64) (followerState, bool)) []uint64 {
	var out []uint64
	for _, id := range isr {
		if id == leader {
			continue
		}
		since := ledSince
		if f, ok := state(id); ok && f.caughtUpAt > since {
			since = f.caughtUpAt
		}
		if now-since > maxLag {
			out = append(out, id)
		}
	}
	return out
}

// canJoinISR reports whether a follower outside the ISR may be added back
// as of now: it holds everything below the high watermark and everything
// the leader wrote before its current epoch began (Kafka's rule: otherwise
// a new leader could be elected that lacks records of an earlier epoch),
// and it was caught up with the leader within maxLag, so that the leader
// would not shrink it out again at once. (A follower that stopped taking
// records at a high watermark that cannot move, the ISR being below
// MinInSyncReplicas, was added back and shrunk out at every tick.)
func canJoinISR(f followerState, hw, epochStartOffset, now, maxLag int64) bool {
	return f.logEnd >= hw && f.logEnd >= epochStartOffset && now-f.caughtUpAt <= maxLag
}
