package log

import "errors"

// Sentinel errors. Methods wrap them with %w and context; test with errors.Is.
// Errors that come from storage wrap the wal package's sentinels as well, so
// errors.Is(err, wal.ErrStorageStalled) holds through this package.
var (
	// ErrOffsetOutOfRange is returned by Read and ReadBatches for an offset
	// below LogStartOffset or above LogEndOffset, and by EndOffsetForEpoch
	// never (it answers with UndefinedEpoch instead).
	ErrOffsetOutOfRange = errors.New("log: offset out of range")

	// ErrCorruptBatch is returned by the batch decoders (Batch.Validate,
	// Batch.Records, SplitBatch), by AppendFollower for a batch whose
	// checksum or structure is wrong, and by Open when a stored batch is
	// damaged or the stored offsets are not dense.
	ErrCorruptBatch = errors.New("log: corrupt record batch")

	// ErrInvalidRecord is returned by EncodeBatch and AppendLeader for an
	// empty batch or a timestamp outside the storable range (1970-01-01 to
	// 2262-04-11 UTC).
	ErrInvalidRecord = errors.New("log: invalid record")

	// ErrBatchTooLarge is returned by AppendLeader and AppendFollower for a
	// batch larger than Options.MaxBatchBytes encoded.
	ErrBatchTooLarge = errors.New("log: batch too large")

	// ErrNotContiguous is returned by AppendFollower when a batch's base
	// offset is not the log end offset: the follower must continue the log
	// exactly.
	ErrNotContiguous = errors.New("log: batch does not continue the log")

	// ErrStaleEpoch is returned by AppendLeader and AppendFollower for a
	// batch whose leader epoch is below the latest epoch of the log: batch
	// epochs never decrease along a log.
	ErrStaleEpoch = errors.New("log: leader epoch below the log's latest epoch")

	// ErrTruncateBelowHighWatermark is returned by TruncateTo (and, under
	// wal.SyncAlways, TruncateBelowHighWatermark) when the truncation would
	// remove records below the high watermark.
	ErrTruncateBelowHighWatermark = errors.New("log: truncation below the high watermark")

	// ErrBadCheckpoint is logged (not returned) when Open finds a checkpoint
	// file it cannot use; Open then rebuilds from the wal. DecodeCheckpoint
	// returns it.
	ErrBadCheckpoint = errors.New("log: bad checkpoint")

	// ErrClosed is returned by every method of a closed Log, and by Wait and
	// WaitEnd to waiters woken by Close.
	ErrClosed = errors.New("log: log is closed")

	// ErrInvalidOptions is returned by Open for options that fail
	// validation.
	ErrInvalidOptions = errors.New("log: invalid options")
)
