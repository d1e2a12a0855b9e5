package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method of a Log after Close, and by a
	// Reader whose Log was closed.
	ErrClosed = errors.New("wal: log is closed")

	// ErrStorageStalled is the sticky error of a Log whose sync did not
	// return within Options.SyncTimeout. Enqueue, Wait, Append, Sync,
	// TruncateAfter and Err return it (possibly wrapped) from then on.
	ErrStorageStalled = errors.New("wal: storage stalled: sync did not complete within the sync timeout")

	// ErrCorrupt is returned, inside a *CorruptError, by Open for damage
	// before the tail of the last segment or an inconsistent set of segments,
	// and by ReadAt and Reader for a frame whose checksum does not match.
	ErrCorrupt = errors.New("wal: corrupt log")

	// ErrFrameTooLarge is returned by Enqueue and Append for a payload
	// larger than Options.MaxFrameSize.
	ErrFrameTooLarge = errors.New("wal: frame too large")

	// ErrOutOfRange is returned by ReadAt, NewReader and TruncateAfter for a
	// position outside [Start, WrittenEnd] (ReadAt: [Start, WrittenEnd)), and
	// by a Reader whose next position was dropped by TruncateAfter or
	// DeleteBefore.
	ErrOutOfRange = errors.New("wal: position out of range")

	// ErrNotFrameBoundary is returned by TruncateAfter for a position that
	// is not the start of a frame.
	ErrNotFrameBoundary = errors.New("wal: position is not a frame boundary")

	// ErrInvalidOptions is returned by Open and OpenJournal for options that
	// fail validation, by Open for a JournalID already open in its Journal,
	// and by Journal.Forget for an id that is open.
	ErrInvalidOptions = errors.New("wal: invalid options")

	// ErrCrashed is returned (inside a *fs.PathError) by the files a MemFS
	// handed out before its Crash, and by the incarnations of it (see
	// MemFS.Incarnation) that a Crash ended.
	ErrCrashed = errors.New("wal: memfs: file handle from before a crash")
)

// CorruptError reports where damage was found. It matches ErrCorrupt with
// errors.Is.
type CorruptError struct {
	Segment string // file name of the segment, relative to Options.Dir
	Offset  int64  // byte offset in the segment file
	Reason  string // what was wrong
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt log: segment %s offset %d: %s", e.Segment, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
