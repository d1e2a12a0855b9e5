package tcp

import "time"

// backoff is the wait before attempt number attempt (from 0) to reach a
// peer: lo doubled attempt times, capped at hi, then scaled into [1/2, 1]
// of itself by jitter, a number in [0, 1).
func backoff(attempt int, lo, hi time.Duration, jitter float64) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(jitter*float64(d/2))
}
