package meta

import "errors"

// Sentinel errors. Methods that return them say so; they are wrapped with
// context, so test them with errors.Is.
var (
	// ErrClosed is returned by every method of a Node after Close, and after
	// the Node stopped on a storage error (see Node.Err).
	ErrClosed = errors.New("meta: node is closed")
	// ErrUnknownTopic is returned when a topic does not exist.
	ErrUnknownTopic = errors.New("meta: unknown topic")
	// ErrUnknownPartition is returned when a topic has no such partition.
	ErrUnknownPartition = errors.New("meta: unknown partition")
	// ErrTopicExists is returned by CreateTopic for a name already taken.
	ErrTopicExists = errors.New("meta: topic already exists")
	// ErrInvalidArgument is returned for a malformed request: a bad topic
	// name, a non-positive partition count, an ISR that is not a subset of
	// the replicas, and so on.
	ErrInvalidArgument = errors.New("meta: invalid argument")
	// ErrNotEnoughNodes is returned by CreateTopic when the replication
	// factor exceeds the number of live (registered, unfenced, healthy) nodes.
	ErrNotEnoughNodes = errors.New("meta: not enough live nodes for the replication factor")
	// ErrStaleEpoch is returned by AlterISR (and the controller's own
	// commands) when the leader epoch or partition epoch in the request is
	// not the current one, or the requester is not the partition's leader.
	ErrStaleEpoch = errors.New("meta: stale epoch")
	// ErrUnknownNode is returned for a node that has not registered.
	ErrUnknownNode = errors.New("meta: unknown node")
	// ErrCorrupt is returned when a stored or received record does not decode.
	ErrCorrupt = errors.New("meta: corrupt record")
)
