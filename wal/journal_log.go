package wal

import "fmt"

// The Log's side of Options.Journal. These run on the writer goroutine.

// journalAppend appends a record about this Log to the journal: a write of
// data at pos (after the segment holds it), or a truncation to pos. The
// record is durable once commitJournal returns.
func (l *Log) journalAppend(kind byte, pos Pos, data []byte) error {
	l.w.jhdr = appendJournalHeader(l.w.jhdr[:0], kind, l.opts.JournalID, pos)
	jend, err := l.opts.Journal.appendRecord(l.opts.JournalID, l.w.jhdr, data, kind, pos)
	if err != nil {
		return l.fail(err)
	}
	l.w.jend = jend
	return nil
}

// commitJournal waits, under the sync deadline, until the journal has
// synced every record this Log appended, and publishes the durable end.
// TruncateAfter and Close use it; group commits use commitJournalAsync.
// A failed journal fails the Log with the journal's error (a stalled one
// with ErrStorageStalled).
func (l *Log) commitJournal() error {
	end := l.WrittenEnd()
	l.commits.Add(1)
	l.syncing.Store(l.w.active)
	l.w.watchdog.Reset(l.opts.SyncTimeout)
	err := l.opts.Journal.waitDurable(l.w.jend, l.failed)
	if !l.w.watchdog.Stop() {
		return l.fail(ErrStorageStalled) // stalledSync already failed the Log
	}
	if err == nil {
		err = l.Err() // aborted: the Log failed meanwhile
	}
	if err != nil {
		return l.fail(fmt.Errorf("wal: journal commit: %w", err))
	}
	// Every queued commit is covered: drop them, so that none publishes
	// its end after a truncation that follows lowered it.
	l.jpend.Lock()
	l.jpend.q = l.jpend.q[:0]
	l.setEnds(end, end)
	l.jpend.Unlock()
	return nil
}

// checkpointAsync answers a Journal checkpoint's request: make the bytes
// written so far durable in the segment itself. The journal needs only
// what was written before the checkpoint began; earlier segments were
// synced when they rolled, and a sync of the active segment started now
// covers the rest. That sync runs beside the writer, which goes on with
// its rounds meanwhile (File.Sync may run concurrently with WriteAt and
// Truncate): the Log's appends are acknowledged through the journal and
// need not wait for a sync of megabytes. The sync holds a reference to
// the segment, so that a truncation or retention removing it meanwhile
// does not close its file; a failed or stalled sync fails the Log
// (guard). The writer waits for it when it exits.
func (l *Log) checkpointAsync(reply chan error) {
	if err := l.Err(); err != nil {
		reply <- err
		return
	}
	s := l.w.active
	l.mu.Lock()
	s.refs++
	l.mu.Unlock()
	l.syncs.Add(1)
	l.w.checkpoints.Go(func() {
		err := l.guard("checkpoint sync "+s.name, s.f.Sync)
		l.release(s)
		reply <- err
	})
}

// journalCommit is a group commit waiting for the journal: its frames end
// at end, its last record at jend.
type journalCommit struct{ jend, end Pos }

// commitJournalAsync queues the round's commit: the writer goes on with
// the next round while the journal syncs this one's records, and the
// durable end advances when it has (journalDurable). The journal's
// SyncTimeout bounds it: a stalled journal fails every Log with a commit
// waiting (journalFailed).
func (l *Log) commitJournalAsync() {
	j := l.opts.Journal
	l.commits.Add(1)
	l.jpend.Lock()
	l.jpend.q = append(l.jpend.q, journalCommit{jend: l.w.jend, end: l.WrittenEnd()})
	l.jpend.Unlock()
	// The journal may have synced or failed before the commit was queued.
	l.journalDurable(j.log.DurableEnd())
	if err := j.log.Err(); err != nil {
		l.journalFailed(err)
	}
}

// journalDurable publishes the commits whose records the journal has
// synced up to jdurable.
func (l *Log) journalDurable(jdurable Pos) {
	l.jpend.Lock()
	end := Pos(-1)
	i := 0
	for i < len(l.jpend.q) && l.jpend.q[i].jend <= jdurable {
		end = l.jpend.q[i].end
		i++
	}
	if i > 0 {
		l.jpend.q = append(l.jpend.q[:0], l.jpend.q[i:]...)
		l.mu.Lock()
		if Pos(l.durableEnd.Load()) < end && l.mu.err == nil {
			l.durableEnd.Store(int64(end))
			l.mu.durable.wake()
		}
		l.mu.Unlock()
	}
	l.jpend.Unlock()
}

// journalFailed fails the Log if a commit of its waits for the failed
// journal.
func (l *Log) journalFailed(err error) {
	l.jpend.Lock()
	waiting := len(l.jpend.q) > 0
	l.jpend.Unlock()
	if waiting {
		l.fail(fmt.Errorf("wal: journal commit: %w", err))
	}
}
