package replog

import (
	"context"
	"time"

	"github.com/replog/replog/meta"
)

// MaxPartitions is the most partitions a topic may have.
const MaxPartitions = 1 << 16

// MaxTopicNameLen is the longest topic name CreateTopic takes. A name is 1
// to MaxTopicNameLen characters of [a-zA-Z0-9._-], not "." or "..". (Kafka
// allows 249; replog names each replica's directory after the topic, its
// ID and the partition, and keeps that within 255 bytes. Topics of up to
// 249 characters that earlier versions created are still found, and can
// be deleted; on disk, a replica of one opens only while its name, ID and
// partition fit in those 255 bytes.)
const MaxTopicNameLen = meta.MaxTopicNameLen

// TopicConfig configures a topic. Zero fields take the defaults documented
// on them.
type TopicConfig struct {
	// Partitions is the number of partitions, 1 to MaxPartitions. Required.
	Partitions int32
	// ReplicationFactor is the number of replicas of each partition, at most
	// the number of nodes. Default min(3, number of Peers).
	ReplicationFactor int
	// MinInSyncReplicas is the smallest ISR with which an AcksAll Append
	// is acknowledged; below it such appends fail with
	// ErrNotEnoughReplicas. A leader never shrinks the ISR below it: it
	// keeps lagging members in (they hold every committed record, so they
	// stay eligible as leaders) and fails AcksAll appends as if the ISR
	// were short. Default: a majority of ReplicationFactor.
	MinInSyncReplicas int
	// RetentionBytes bounds each partition replica's log: the oldest
	// segments go once the log is larger. 0 keeps everything.
	RetentionBytes int64
	// RetentionTime: segments whose records are all older than this go.
	// 0 keeps everything.
	RetentionTime time.Duration
}

// check validates tc for a cluster of nodes nodes.
func (tc *TopicConfig) check(op string, nodes int) error {
	switch {
	case tc.Partitions < 1 || tc.Partitions > MaxPartitions:
		return invalid(op, "%d partitions (want 1 to %d)", tc.Partitions, MaxPartitions)
	case tc.ReplicationFactor < 0 || tc.ReplicationFactor > nodes:
		return invalid(op, "replication factor %d in a cluster of %d nodes", tc.ReplicationFactor, nodes)
	case tc.MinInSyncReplicas < 0:
		return invalid(op, "MinInSyncReplicas %d", tc.MinInSyncReplicas)
	case tc.RetentionBytes < 0 || tc.RetentionTime < 0:
		return invalid(op, "negative retention")
	}
	if d := tc.withDefaults(nodes); d.MinInSyncReplicas > d.ReplicationFactor {
		return invalid(op, "MinInSyncReplicas %d above replication factor %d", d.MinInSyncReplicas, d.ReplicationFactor)
	}
	return nil
}

// withDefaults returns tc with the defaults filled in, for a cluster of
// nodes nodes.
func (tc TopicConfig) withDefaults(nodes int) TopicConfig {
	if tc.ReplicationFactor == 0 {
		tc.ReplicationFactor = min(3, nodes)
	}
	if tc.MinInSyncReplicas == 0 {
		tc.MinInSyncReplicas = tc.ReplicationFactor/2 + 1
	}
	return tc
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name string
	// Config is the topic's configuration, defaults filled in.
	Config     TopicConfig
	Partitions []PartitionInfo
}

// PartitionInfo describes one partition of a topic.
type PartitionInfo struct {
	Partition int32
	// Leader is the partition's leader, 0 while it has none (the whole ISR
	// is down: replog never elects a replica outside the ISR).
	Leader NodeID
	// LeaderEpoch grows with every change of leader.
	LeaderEpoch int32
	// Replicas are the nodes that hold the partition, the preferred leader
	// first; ISR are those in sync with the leader.
	Replicas, ISR []NodeID
	// HighWatermark (the offset below which records are committed and
	// readable) and LogStartOffset (the first offset retention kept), as
	// this node's replica knows them: -1 when this node holds no replica
	// (or has not opened it yet). Another node's replica may be ahead.
	HighWatermark, LogStartOffset int64
}

// CreateTopic creates a topic. Replicas are spread over the nodes; every
// partition starts led by its preferred replica. It returns once the topic
// is committed and every partition has a leader: from then on the topic is
// usable through every node.
//
// Errors: ErrInvalidArgument (name, config), ErrTopicExists,
// ErrNotEnoughReplicas (fewer live nodes than the replication factor, once
// every peer has joined the cluster at least once: while some peer never
// has, as when the cluster starts, CreateTopic waits for it within ctx),
// ErrClosed, ctx's error (the topic may or may not have been created).
func (c *Cluster) CreateTopic(ctx context.Context, name string, cfg TopicConfig) error {
	const op = "create topic"
	if err := c.checkOpen(op); err != nil {
		return err
	}
	if err := meta.ValidTopicName(name); err != nil {
		return translate(op, err)
	}
	if len(name) > MaxTopicNameLen {
		return invalid(op, "topic name of %d characters, at most %d", len(name), MaxTopicNameLen)
	}
	if err := cfg.check(op, len(c.cfg.Peers)); err != nil {
		return err
	}
	cfg = cfg.withDefaults(len(c.cfg.Peers))
	_, err := c.meta.CreateTopic(ctx, name, meta.TopicConfig{
		Partitions:        cfg.Partitions,
		ReplicationFactor: cfg.ReplicationFactor,
		MinInSyncReplicas: cfg.MinInSyncReplicas,
		RetentionBytes:    cfg.RetentionBytes,
		RetentionTime:     cfg.RetentionTime,
	})
	return translate(op, err)
}

// DeleteTopic deletes a topic: every replica drops its data. Appends and
// reads in flight on it fail. It returns once every node holding a replica
// of the topic has applied the deletion, so that from then on no node,
// even one whose metadata lagged, serves the deleted topic: a topic created
// again under the name is the only one appends and reads reach. A replica
// node that stopped is waited for until the controller fences it, about
// SessionTimeout after it stopped. (A node cut off from the cluster is
// fenced as well, but may still serve Reads of the deleted topic until it
// hears of the deletion; see the caveats in the package doc.)
// ErrUnknownTopic waits likewise, for every node: after any other error,
// call DeleteTopic again until it returns nil or ErrUnknownTopic before
// re-using the name.
//
// Errors: ErrInvalidArgument (name), ErrUnknownTopic, ErrClosed, ctx's
// error (the topic may or may not have been deleted, and if it was, a
// replica node may not know yet).
func (c *Cluster) DeleteTopic(ctx context.Context, name string) error {
	const op = "delete topic"
	if err := c.checkOpen(op); err != nil {
		return err
	}
	if err := meta.ValidTopicName(name); err != nil {
		return translate(op, err)
	}
	return translate(op, c.meta.DeleteTopic(ctx, name))
}

// Topic describes a topic. The read is lease-checked (see package meta):
// local while this node holds a lease, else after one round trip to the
// controller; a topic missing locally is always confirmed there, so one
// whose CreateTopic returned is found on every node. On a node that is
// not the controller the answer may trail the group by what is still on
// its way to this node (a topic just deleted, an older leader or ISR);
// Append and Read confirm with the group before they fail on such a
// difference. High watermarks and log start offsets are this node's.
//
// Errors: ErrInvalidArgument (name), ErrUnknownTopic, ErrClosed, ctx's error
// (e.g. on a node cut off from the majority).
func (c *Cluster) Topic(ctx context.Context, name string) (TopicInfo, error) {
	const op = "topic"
	if err := c.checkOpen(op); err != nil {
		return TopicInfo{}, err
	}
	if err := meta.ValidTopicName(name); err != nil {
		return TopicInfo{}, translate(op, err)
	}
	t, err := c.meta.Topic(ctx, name)
	if err != nil {
		return TopicInfo{}, translate(op, err)
	}
	return c.topicInfo(t), nil
}

// Topics describes every topic, sorted by name: every topic whose
// CreateTopic returned before the call, none whose DeleteTopic did. On a
// node that is not the controller it costs a round trip to the controller
// (a read barrier).
//
// Errors: ErrClosed, ctx's error.
func (c *Cluster) Topics(ctx context.Context) ([]TopicInfo, error) {
	const op = "topics"
	if err := c.checkOpen(op); err != nil {
		return nil, err
	}
	ts, err := c.meta.Topics(ctx)
	if err != nil {
		return nil, translate(op, err)
	}
	out := make([]TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = c.topicInfo(t)
	}
	return out, nil
}

// topicInfo converts meta's record into the public description, in new
// slices the caller owns.
func (c *Cluster) topicInfo(t *meta.Topic) TopicInfo {
	info := TopicInfo{
		Name: t.Name,
		Config: TopicConfig{
			Partitions:        t.Config.Partitions,
			ReplicationFactor: t.Config.ReplicationFactor,
			MinInSyncReplicas: t.Config.MinInSyncReplicas,
			RetentionBytes:    t.Config.RetentionBytes,
			RetentionTime:     t.Config.RetentionTime,
		},
		Partitions: make([]PartitionInfo, len(t.Partitions)),
	}
	for i, p := range t.Partitions {
		pi := PartitionInfo{
			Partition:      p.Partition,
			Leader:         p.Leader,
			LeaderEpoch:    p.LeaderEpoch,
			Replicas:       append([]NodeID(nil), p.Replicas...),
			ISR:            append([]NodeID(nil), p.ISR...),
			HighWatermark:  -1,
			LogStartOffset: -1,
		}
		if hw, start, ok := c.repl.PartitionState(t.Name, p.Partition); ok {
			pi.HighWatermark, pi.LogStartOffset = hw, start
		}
		info.Partitions[i] = pi
	}
	return info
}
