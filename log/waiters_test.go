package log

import (
	"math/rand/v2"
	"testing"
)

func released(w *waiter) bool {
	select {
	case <-w.ch:
		return true
	default:
		return false
	}
}

func TestWaitSetWakesExactlyThosePassed(t *testing.T) {
	var s waitSet
	rng := rand.New(rand.NewPCG(3, 4))
	ws := make([]*waiter, 200)
	for i := range ws {
		ws[i] = s.add(rng.Int64N(100))
	}
	// Cancel every 7th waiter.
	for i := 0; i < len(ws); i += 7 {
		s.remove(ws[i])
	}
	for _, v := range []int64{0, 10, 10, 55, 100} {
		s.advance(v)
		for i, w := range ws {
			cancelled := i%7 == 0
			if want := !cancelled && w.offset < v; released(w) != want {
				t.Fatalf("after advance(%d): waiter %d (offset %d, cancelled %v) released=%v", v, i, w.offset, cancelled, !want)
			}
		}
	}
	if s.len() != 0 {
		t.Fatalf("%d waiters left", s.len())
	}
	w := s.add(500)
	s.releaseAll()
	if !released(w) {
		t.Fatal("releaseAll left a waiter")
	}
	s.remove(w) // no-op after release
}
