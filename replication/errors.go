package replication

import (
	"errors"
	"fmt"
)

// Sentinel errors. Methods wrap them with context; test with errors.Is.
// Errors of the packages below pass through wrapped, so errors.Is also finds
// log.ErrOffsetOutOfRange (Read), wal.ErrStorageStalled (Append, once a
// replica's storage stalled), meta.ErrUnknownTopic and
// meta.ErrUnknownPartition (Append, Read, PartitionState's callers).
var (
	// ErrNotLeader is returned, inside a *NotLeaderError, when a call that
	// needs the partition's leader reached a node that is not (or no longer)
	// the leader and could not be retried within the caller's context, and
	// by Append when the topic was deleted while the batch was in flight
	// (leader 0). Either way an Append may or may not have been written.
	ErrNotLeader = errors.New("replication: not the partition leader")

	// ErrNotEnoughReplicas is returned by Append with AcksAll when the
	// partition's ISR has stayed smaller than the topic's MinInSyncReplicas
	// (or held at it by the leader with members that lag behind it) for
	// ReplicaLagTime since the leader first answered so (a shorter
	// shortage is waited out), or wrapped with ctx's error when ctx ends
	// during that wait. The batch may or may not have been written: the
	// ISR may have shrunk after the leader wrote it, and it may still
	// become committed later.
	ErrNotEnoughReplicas = errors.New("replication: not enough in-sync replicas")

	// ErrRecordTooLarge is returned by Append for a batch larger than
	// Config.MaxBatchBytes encoded.
	ErrRecordTooLarge = errors.New("replication: record batch too large")

	// ErrClosed is returned by every method after Close (and by Append
	// after Shutdown began).
	ErrClosed = errors.New("replication: manager is closed")

	// ErrInvalidArgument is returned for malformed calls: an empty batch,
	// a negative offset, an unknown acks value, a bad Config.
	ErrInvalidArgument = errors.New("replication: invalid argument")
)

// NotLeaderError reports which node this node believes leads the
// partition (0: none known). It matches ErrNotLeader with errors.Is.
type NotLeaderError struct {
	Leader uint64
}

// Error implements error.
func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return "replication: not the partition leader (no leader known)"
	}
	return fmt.Sprintf("replication: not the partition leader (leader is node %d)", e.Leader)
}

// Is reports whether target is ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
