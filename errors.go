package replog

import (
	"context"
	"errors"
	"fmt"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/replication"
	"github.com/replog/replog/wal"
)

// Sentinel errors. Every error a Cluster method returns matches at most one
// of them with errors.Is, and keeps the error of the layer it came from
// (meta, replication, log, wal) wrapped beside it, so that errors.Is and
// errors.As still find the underlying cause too.
var (
	// ErrUnknownTopic: the topic does not exist. Returned by Append (unless
	// Config.AutoCreate is set), Read, Topic and DeleteTopic once the node
	// has confirmed with the controller that the topic is missing.
	ErrUnknownTopic = errors.New("replog: unknown topic")

	// ErrUnknownPartition: the topic has no such partition (Append, Read).
	ErrUnknownPartition = errors.New("replog: unknown partition")

	// ErrTopicExists: CreateTopic for a name that is taken.
	ErrTopicExists = errors.New("replog: topic already exists")

	// ErrNotLeader: an Append's outcome is unknown because its partition
	// lost its leader for good while the append was on its way: the topic
	// was deleted, and the batch may have been written before. The error
	// is a *NotLeaderError, which names the leader this node knows of, if
	// any (0 here). An Append or Read that cannot reach a leader within
	// its ctx returns ctx's error, not ErrNotLeader.
	ErrNotLeader = errors.New("replog: not the partition leader")

	// ErrNotEnoughReplicas: an AcksAll Append found fewer in-sync replicas
	// keeping up than the topic's MinInSyncReplicas for a SessionTimeout
	// (Append waits a shorter shortage out), or CreateTopic found fewer
	// live nodes than the replication factor.
	ErrNotEnoughReplicas = errors.New("replog: not enough in-sync replicas")

	// ErrOffsetOutOfRange: Read at an offset below the partition's log
	// start offset or above its log end offset (or a negative one).
	ErrOffsetOutOfRange = errors.New("replog: offset out of range")

	// ErrRecordTooLarge: an Append batch larger than Config.MaxBatchBytes,
	// encoded.
	ErrRecordTooLarge = errors.New("replog: record batch too large")

	// ErrStorageStalled: a sync of the partition's log did not finish
	// within Config.SyncTimeout, or its storage failed. The node stops
	// leading the partition; the write may or may not survive.
	ErrStorageStalled = errors.New("replog: storage stalled or failed")

	// ErrClosed: the Cluster was closed (or, in a LocalCluster, stopped).
	ErrClosed = errors.New("replog: node is closed")

	// ErrInvalidArgument: a malformed request or Config: a bad topic name,
	// a negative partition, an empty batch, an unknown Acks value, a
	// timestamp outside 1970..2262, a TopicConfig out of range.
	ErrInvalidArgument = errors.New("replog: invalid argument")
)

// NotLeaderError is the error of ErrNotLeader: errors.Is(err, ErrNotLeader)
// holds for it, and errors.As gives the leader a caller can send the request
// to instead.
type NotLeaderError struct {
	// Leader is the partition's leader as this node knows it, 0 if none
	// is known (an election is under way or the partition is offline).
	Leader NodeID
}

// Error implements error.
func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return "replog: not the partition leader (leader unknown)"
	}
	return fmt.Sprintf("replog: not the partition leader (leader is node %d)", e.Leader)
}

// Is reports whether target is ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// translations maps the errors of the layers below onto this package's
// sentinels, first match wins.
var translations = [...]struct{ from, to error }{
	{meta.ErrClosed, ErrClosed},
	{replication.ErrClosed, ErrClosed},
	{meta.ErrUnknownTopic, ErrUnknownTopic},
	{meta.ErrUnknownPartition, ErrUnknownPartition},
	{meta.ErrTopicExists, ErrTopicExists},
	{meta.ErrInvalidArgument, ErrInvalidArgument},
	{meta.ErrNotEnoughNodes, ErrNotEnoughReplicas},
	{replication.ErrNotEnoughReplicas, ErrNotEnoughReplicas},
	{replication.ErrRecordTooLarge, ErrRecordTooLarge},
	{replication.ErrInvalidArgument, ErrInvalidArgument},
	{log.ErrBatchTooLarge, ErrRecordTooLarge},
	{log.ErrOffsetOutOfRange, ErrOffsetOutOfRange},
	{log.ErrInvalidRecord, ErrInvalidArgument},
	{wal.ErrStorageStalled, ErrStorageStalled},
}

// translate maps an error from meta, replication, log or wal onto the
// package's sentinels, keeping the cause wrapped: the result matches both
// the sentinel and everything err matched. A context error comes back
// wrapped as it is (with ErrNotEnoughReplicas if it matched that too); an
// error that matches no sentinel comes back with op in front. Messages
// read "replog: <sentinel>: <op>: <cause>". nil stays nil.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, replication.ErrNotEnoughReplicas) {
			// An AcksAll Append whose ctx ended while it waited for the
			// ISR to grow back: it matches both.
			return fmt.Errorf("%w: %s: %w", ErrNotEnoughReplicas, op, err)
		}
		return fmt.Errorf("replog: %s: %w", op, err)
	}
	var nle *replication.NotLeaderError
	if errors.As(err, &nle) {
		return fmt.Errorf("%w: %s: %w", &NotLeaderError{Leader: nle.Leader}, op, err)
	}
	if errors.Is(err, replication.ErrNotLeader) {
		return fmt.Errorf("%w: %s: %w", &NotLeaderError{}, op, err)
	}
	for _, t := range translations {
		if errors.Is(err, t.from) {
			return fmt.Errorf("%w: %s: %w", t.to, op, err)
		}
	}
	return fmt.Errorf("replog: %s: %w", op, err)
}

// invalid returns an ErrInvalidArgument error for op with a reason.
func invalid(op, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, op, fmt.Sprintf(format, args...))
}
