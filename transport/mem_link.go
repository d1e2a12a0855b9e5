package transport

import (
	"math/rand/v2"
	"sync"
	"time"
)

// MemStats counts a MemNetwork's messages, for one link or summed over all.
// Sent = Delivered + Dropped() + messages still queued.
type MemStats struct {
	Sent      uint64 // Send calls that reached the network (open, started endpoint)
	Delivered uint64 // messages handed to a Handler (counted as their Handler calls begin)

	DroppedFault       uint64 // lost to a link's Drop rate
	DroppedCut         uint64 // lost to isolation or a partition, at Send or at delivery
	DroppedFull        uint64 // refused by a full queue (Send returned ErrQueueFull)
	DroppedUnreachable uint64 // no open, started endpoint when their turn came
}

// Dropped is the number of messages lost, for any reason.
func (s MemStats) Dropped() uint64 {
	return s.DroppedFault + s.DroppedCut + s.DroppedFull + s.DroppedUnreachable
}

func (s *MemStats) add(o MemStats) {
	s.Sent += o.Sent
	s.Delivered += o.Delivered
	s.DroppedFault += o.DroppedFault
	s.DroppedCut += o.DroppedCut
	s.DroppedFull += o.DroppedFull
	s.DroppedUnreachable += o.DroppedUnreachable
}

// Stats returns the counters summed over every link.
func (n *MemNetwork) Stats() MemStats {
	n.mu.Lock()
	links := n.mu.allLinks
	n.mu.Unlock()
	var s MemStats
	for _, l := range links {
		s.add(l.stats())
	}
	return s
}

// LinkStats returns the counters of the directed link from→to (zero if it
// never carried a message).
func (n *MemNetwork) LinkStats(from, to uint64) MemStats {
	if v, ok := n.links.Load(linkKey{from, to}); ok {
		return v.(*memLink).stats()
	}
	return MemStats{}
}

// memMsg is one queued message; due is zero when it has no delay.
type memMsg struct {
	msg []byte
	due time.Time
}

// memLink is one directed link: a bounded FIFO queue and the goroutine that
// delivers it. The goroutine is owned by the MemNetwork; it exits when the
// network's done channel closes.
type memLink struct {
	net    *MemNetwork
	k      linkKey
	notify chan struct{} // capacity 1: the queue went from empty to not

	mu struct {
		sync.Mutex
		q     []memMsg   // waiting messages, oldest first
		spare []memMsg   // the other buffer, swapped with q per burst
		n     int        // messages queued or being delivered
		bytes int        // their payload bytes
		rnd   *rand.Rand // the link's fault decisions
		stats MemStats
	}
}

func newMemLink(n *MemNetwork, k linkKey) *memLink {
	l := &memLink{net: n, k: k, notify: make(chan struct{}, 1)}
	l.mu.rnd = rand.New(rand.NewPCG(uint64(n.seed)^mix64(k.from), mix64(k.to^0x5bd1e995)))
	return l
}

// mix64 is splitmix64's finaliser: it spreads node IDs over the seed space.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (l *memLink) stats() MemStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.stats
}

// send decides msg's fate and queues it.
func (l *memLink) send(msg []byte) error {
	s := l.net.faults.Load()
	cut := s.cut(l.k.from, l.k.to)
	var f LinkFaults
	if !cut {
		f = s.link(l.k)
	}
	var due time.Time
	if f.Delay > 0 {
		due = time.Now().Add(f.Delay)
	}
	l.mu.Lock()
	l.mu.stats.Sent++
	// The full queue comes first: a refused message draws no random
	// number, so a sender that retries it gets the same fault decisions.
	switch {
	case l.mu.n >= MemQueueLen || l.mu.bytes+len(msg) > MemQueueBytes:
		l.mu.stats.DroppedFull++
		l.mu.Unlock()
		return ErrQueueFull
	case cut:
		l.mu.stats.DroppedCut++
		l.mu.Unlock()
		return nil
	case f.Drop > 0 && l.mu.rnd.Float64() < f.Drop:
		l.mu.stats.DroppedFault++
		l.mu.Unlock()
		return nil
	}
	l.mu.q = append(l.mu.q, memMsg{msg: msg, due: due})
	l.mu.n++
	l.mu.bytes += len(msg)
	wake := len(l.mu.q) == 1
	l.mu.Unlock()
	if wake {
		select {
		case l.notify <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	return nil
}

// run delivers the link's queue in bursts until the network closes.
func (l *memLink) run() {
	defer l.net.wg.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-l.net.done:
			return
		case <-l.notify:
		}
		l.mu.Lock()
		batch := l.mu.q
		l.mu.q, l.mu.spare = l.mu.spare[:0], nil
		l.mu.Unlock()

		ok := l.deliver(batch, &timer)
		clear(batch) // let the messages go
		l.mu.Lock()
		l.mu.spare = batch[:0]
		l.mu.Unlock()
		if !ok {
			return
		}
	}
}

// deliver hands batch to the receiver in order, waiting for each delayed
// message's due time. It returns false if the network closed meanwhile.
func (l *memLink) deliver(batch []memMsg, timer **time.Timer) bool {
	for i := 0; i < len(batch); {
		if due := batch[i].due; !due.IsZero() {
			if wait := time.Until(due); wait > 0 {
				if *timer == nil {
					*timer = time.NewTimer(wait)
				} else {
					(*timer).Reset(wait)
				}
				select {
				case <-l.net.done:
					return false
				case <-(*timer).C:
				}
			}
		}
		// Extend the run over every following message already due.
		j := i + 1
		var now time.Time
		for ; j < len(batch); j++ {
			due := batch[j].due
			if due.IsZero() {
				continue
			}
			if now.IsZero() {
				now = time.Now()
			}
			if due.After(now) {
				break
			}
		}
		l.deliverRun(batch[i:j])
		i = j
	}
	return true
}

// deliverRun calls the receiver's Handler for each message of run, or drops
// them all if the link is cut or the receiver is not there. The counters
// move before the Handler calls, so that a Handler that sees a message sees
// it counted; the queue's room is given back after them.
func (l *memLink) deliverRun(run []memMsg) {
	var st MemStats
	bytes := 0
	for _, m := range run {
		bytes += len(m.msg)
	}
	n := uint64(len(run))
	var h Handler
	var ep *MemEndpoint
	if l.net.faults.Load().cut(l.k.from, l.k.to) {
		st.DroppedCut = n
	} else if ep = l.net.endpoint(l.k.to); ep == nil {
		st.DroppedUnreachable = n
	} else if h = ep.enter(); h == nil {
		st.DroppedUnreachable = n
	} else {
		st.Delivered = n
	}
	l.mu.Lock()
	l.mu.stats.add(st)
	l.mu.Unlock()
	if h != nil {
		for _, m := range run {
			h(l.k.from, m.msg)
		}
		ep.exit()
	}
	l.mu.Lock()
	l.mu.n -= len(run)
	l.mu.bytes -= bytes
	l.mu.Unlock()
}
