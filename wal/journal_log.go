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
	l.setEnds(end, end)
	return nil
}

// checkpointSync is a Journal checkpoint's request: make everything written
// so far durable in the segment itself.
func (l *Log) checkpointSync() error {
	if err := l.Err(); err != nil {
		return err
	}
	return l.syncActive()
}
