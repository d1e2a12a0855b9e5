package wal

import (
	"fmt"
	"sync"
	"time"
)

// journalPipeline is how many syncs a Journal keeps in flight: its writer
// writes the next batch while the sync before runs. Measured on the
// replication benchmark (3 nodes, one journal each, on one disk), one sync
// in flight beats four: about 1.4 times the records/s both with 16
// producers of 100-record batches and with 256 single-record producers,
// as each sync then carries everything queued while the one before ran,
// where four overlapping syncs split the same records into more, smaller
// syncs, which this disk's flush rate bounds. (A journal alone on the
// disk, nothing else syncing, measured 2 to 3 times the bandwidth with
// overlapping syncs; keeping several in flight remains possible here.)
const journalPipeline = 1

// syncPipeline lets a Log's writer keep up to max syncs of its active
// segment in flight, publishing the durable ends in order. Only a
// Journal's internal log uses it; other Logs sync inline. The sync
// goroutines are owned by the writer: it waits for them before a roll and
// at shutdown. Lock order: syncPipeline.mu before Log.mu.
type syncPipeline struct {
	max  int
	wg   sync.WaitGroup
	free chan struct{} // cap 1: a sync completed
	mu   struct {
		sync.Mutex
		queue  []*pipeSync // in flight or not yet published, oldest first
		failed bool        // a sync failed or stalled: publish nothing more
	}
}

// pipeSync is one sync in flight: done once it returned.
type pipeSync struct {
	end  Pos
	done bool
}

func newSyncPipeline(max int) *syncPipeline {
	return &syncPipeline{max: max, free: make(chan struct{}, 1)}
}

// pipelineSync starts a sync of everything written so far, first waiting
// for a free slot while max syncs are in flight.
func (l *Log) pipelineSync() {
	p := l.pipe
	for {
		p.mu.Lock()
		n, failed := len(p.mu.queue), p.mu.failed
		p.mu.Unlock()
		if failed {
			return
		}
		if n < p.max {
			break
		}
		select {
		case <-p.free:
		case <-l.failed:
			return
		}
	}
	ps := &pipeSync{end: l.WrittenEnd()}
	p.mu.Lock()
	p.mu.queue = append(p.mu.queue, ps)
	p.mu.Unlock()
	s := l.w.active
	l.syncs.Add(1)
	p.wg.Go(func() { l.runPipeSync(s, ps) })
}

// runPipeSync runs one sync under the deadline, then publishes the durable
// ends of the syncs that are done in order from the oldest.
func (l *Log) runPipeSync(s *segment, ps *pipeSync) {
	t := time.AfterFunc(l.opts.SyncTimeout, func() {
		l.fail(fmt.Errorf("%w: sync %s blocked for more than %v", ErrStorageStalled, s.name, l.opts.SyncTimeout))
	})
	err := s.f.Sync()
	stalled := !t.Stop()
	p := l.pipe
	defer func() {
		select {
		case p.free <- struct{}{}:
		default:
		}
	}()
	p.mu.Lock()
	ps.done = true
	if p.mu.failed {
		p.mu.Unlock()
		return
	}
	if stalled || err != nil {
		// Never publish past a failed sync, even what a later sync
		// reports done: after a failed fsync the kernel may have dropped
		// the dirty pages and a later one may report success.
		p.mu.failed = true
		p.mu.Unlock()
		if stalled {
			l.fail(ErrStorageStalled) // the watchdog already failed the Log
		} else {
			l.fail(fmt.Errorf("wal: sync %s: %w", s.name, err))
		}
		return
	}
	publish := Pos(-1)
	for len(p.mu.queue) > 0 && p.mu.queue[0].done {
		publish = p.mu.queue[0].end
		p.mu.queue[0] = nil
		p.mu.queue = p.mu.queue[1:]
	}
	if publish >= 0 {
		// Under p.mu: two syncs publishing at once must not reorder.
		l.mu.Lock()
		if Pos(l.durableEnd.Load()) < publish {
			l.durableEnd.Store(int64(publish))
			l.mu.durable.wake()
		}
		l.mu.Unlock()
	}
	p.mu.Unlock()
	if publish >= 0 && l.hooks.durable != nil {
		l.hooks.durable(publish)
	}
}

// drainPipeline waits for the syncs in flight.
func (l *Log) drainPipeline() {
	if l.pipe != nil {
		l.pipe.wg.Wait()
	}
}
