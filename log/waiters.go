package log

import "container/heap"

// waiter is one blocked Wait call: it wants the watched value to pass
// offset; ch is closed when it does or when the log closes.
type waiter struct {
	offset int64
	ch     chan struct{}
	index  int // in the heap; -1 once released
}

// waitSet holds waiters in a min-heap by offset, so an advance wakes
// exactly the waiters it passes, in O(woken · log n), and a cancelled
// waiter leaves in O(log n). Pure data; the Log locks it.
type waitSet struct {
	h waiterHeap
}

// add registers a waiter for the watched value to exceed offset.
func (s *waitSet) add(offset int64) *waiter {
	w := &waiter{offset: offset, ch: make(chan struct{})}
	heap.Push(&s.h, w)
	return w
}

// remove drops a waiter that gave up; a no-op if it was released already.
func (s *waitSet) remove(w *waiter) {
	if w.index >= 0 {
		heap.Remove(&s.h, w.index)
	}
}

// advance releases every waiter whose offset is below v and returns how
// many it woke.
func (s *waitSet) advance(v int64) int {
	n := 0
	for len(s.h) > 0 && s.h[0].offset < v {
		w := heap.Pop(&s.h).(*waiter)
		close(w.ch)
		n++
	}
	return n
}

// releaseAll wakes every waiter (the log is closing).
func (s *waitSet) releaseAll() {
	for len(s.h) > 0 {
		close(heap.Pop(&s.h).(*waiter).ch)
	}
}

func (s *waitSet) len() int { return len(s.h) }

type waiterHeap []*waiter

func (h waiterHeap) Len() int           { return len(h) }
func (h waiterHeap) Less(i, j int) bool { return h[i].offset < h[j].offset }
func (h waiterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waiterHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}
