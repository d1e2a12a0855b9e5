package meta

import (
	"context"
	"fmt"
	"sync"
)

// Watcher receives the metadata's events in apply order. Apply never waits
// for a watcher: each has a queue of at most Config.WatchBuffer events, and
// a watcher whose queue would overflow loses its queue and gets one
// EventResync instead, carrying the current State to rebuild from. Close it
// when done.
type Watcher struct {
	n      *Node
	max    int
	notify chan struct{} // capacity 1: "something changed"
	mu     struct {
		sync.Mutex
		q      []Event
		resync bool
		closed bool
	}
}

// Watch returns a Watcher of every event applied from now on. To start
// consistently, read State after Watch: events already reflected in that
// State may be delivered again (compare Event.Index with State.Index).
func (n *Node) Watch() *Watcher {
	w := &Watcher{n: n, max: n.cfg.WatchBuffer, notify: make(chan struct{}, 1)}
	n.watchers.Lock()
	n.watchers.set[w] = struct{}{}
	n.watchers.Unlock()
	return w
}

// publish queues evs for every watcher. Called by the driver only.
func (n *Node) publish(evs []Event) {
	n.watchers.Lock()
	defer n.watchers.Unlock()
	for w := range n.watchers.set {
		w.push(evs)
	}
}

// wakeWatchers lets every watcher's Next notice the node stopped.
func (n *Node) wakeWatchers() {
	n.watchers.Lock()
	defer n.watchers.Unlock()
	for w := range n.watchers.set {
		w.wake()
	}
}

func (w *Watcher) push(evs []Event) {
	w.mu.Lock()
	if len(w.mu.q)+len(evs) > w.max || w.mu.resync {
		w.mu.q = w.mu.q[:0]
		w.mu.resync = true
	} else {
		w.mu.q = append(w.mu.q, evs...)
	}
	w.mu.Unlock()
	w.wake()
}

func (w *Watcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for one until ctx ends, the Watcher
// is closed or the node stops (then ErrClosed).
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	for {
		if e, ok, err := w.take(); ok || err != nil {
			return e, err
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("meta: %w", ctx.Err())
		case <-w.n.done:
			w.mu.Lock()
			empty := len(w.mu.q) == 0 && !w.mu.resync
			w.mu.Unlock()
			if empty {
				return Event{}, w.n.closedErr()
			}
		}
	}
}

// take returns the next event without waiting: ok is false when none is
// queued; err is ErrClosed once the Watcher is closed.
func (w *Watcher) take() (e Event, ok bool, err error) {
	w.mu.Lock()
	switch {
	case w.mu.closed:
		w.mu.Unlock()
		return Event{}, false, ErrClosed
	case w.mu.resync:
		w.mu.resync = false
		w.mu.Unlock()
		s := w.n.State()
		return Event{Type: EventResync, Index: s.index, State: s}, true, nil
	case len(w.mu.q) > 0:
		e := w.mu.q[0]
		w.mu.q[0] = Event{}
		w.mu.q = w.mu.q[1:]
		if len(w.mu.q) == 0 {
			w.mu.q = nil
		}
		w.mu.Unlock()
		return e, true, nil
	}
	w.mu.Unlock()
	return Event{}, false, nil
}

// Notify returns a channel that receives a value whenever events may be
// waiting, for a caller that selects on several sources and then drains
// with TryNext. Wake-ups coalesce (capacity one).
func (w *Watcher) Notify() <-chan struct{} { return w.notify }

// TryNext returns the next event if one is waiting.
func (w *Watcher) TryNext() (Event, bool) {
	e, ok, _ := w.take()
	return e, ok
}

// Close stops the Watcher; Next returns ErrClosed.
func (w *Watcher) Close() {
	w.n.watchers.Lock()
	delete(w.n.watchers.set, w)
	w.n.watchers.Unlock()
	w.mu.Lock()
	w.mu.closed = true
	w.mu.q = nil
	w.mu.Unlock()
	w.wake()
}
