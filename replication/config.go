package replication

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// Acks is how much replication Append waits for. The root package declares
// the same values.
type Acks int8

// The acknowledgement levels.
const (
	// AcksNone: Append returns as soon as the batch is queued for its
	// leader; the offsets it returns are -1. The batch may be lost.
	AcksNone Acks = 0
	// AcksLeader: Append returns once the leader wrote the batch (and
	// synced it under wal.SyncAlways). A leader crash before the followers
	// copy it can lose it. A leader out of touch with the controller for
	// SessionTimeout (meta.Node.InSession) acknowledges none.
	AcksLeader Acks = 1
	// AcksAll: Append returns once the high watermark passed the batch,
	// with at least MinInSyncReplicas replicas in the ISR: every ISR member
	// holds it, so no clean leader election can lose it.
	AcksAll Acks = -1
)

// Sender sends one subsystem's messages to another node. mux.Sender
// satisfies it: msg[0] is reserved for the tag (build messages with
// mux.Frame) and the sender owns msg afterwards. Send must not block; it may
// drop msg (the Manager retries).
type Sender interface {
	Send(to uint64, msg []byte) error
}

// Defaults of Config.
const (
	DefaultMaxBatchBytes  = 4 << 20
	DefaultReplicaLagTime = 2 * time.Second // meta's default SessionTimeout
)

// Config configures a Manager. Zero fields take the documented defaults.
type Config struct {
	// ID is this node's ID, as in meta. Required.
	ID uint64
	// Meta is this node's metadata node. Required. The Manager watches it
	// for partition changes and calls AlterISR, Drain and SetUnhealthy.
	Meta *meta.Node
	// Replication sends mux.TagReplication messages (leader pushes,
	// follower acknowledgements); register HandleReplication for the tag.
	// Required.
	Replication Sender
	// Forward sends mux.TagForward messages (appends and reads forwarded
	// to a leader, and their answers); register HandleForward for the tag.
	// Required.
	Forward Sender

	// Dir holds one directory per partition replica,
	// "<topic>-<topic ID>-<partition>": the topic ID makes a topic deleted
	// and created again under the same name start empty. With Dir "" and
	// FS nil the logs live in a fresh wal.MemFS, lost at Close. Each start
	// removes the directories no replica of this node will open again
	// (see the package doc: the sweep); other entries are left alone.
	Dir string
	// FS is the file system of the logs. Nil: wal.OSFS, or a fresh
	// wal.MemFS when Dir is "". A non-nil FS needs a Dir.
	FS wal.FS

	// Durability, SyncInterval, SyncTimeout and SegmentSize configure
	// every replica's wal (see package wal). With SyncAlways a follower
	// acknowledges only synced data, and the high watermark counts the
	// leader's synced end only. SyncTimeout (default
	// wal.DefaultSyncTimeout) also bounds the Manager's own storage
	// waits: producer snapshots, the journal's records of removed
	// replicas.
	Durability   wal.Durability
	SyncInterval time.Duration
	SyncTimeout  time.Duration
	SegmentSize  int64
	// Journal (with Durability SyncAlways only) makes the node's replicas
	// share one redo journal, a wal.Journal in Dir/journal: a replica's
	// round is written to its own log without a sync and to the journal,
	// and the journal syncs the rounds of every replica with one write and
	// one fdatasync. A node then pays one device flush per round, not one
	// per partition; every byte is written twice. See wal.Journal.
	//
	// The journal trims only past the records of every replica it holds
	// records of, open or not. A replica removed for good (its topic
	// deleted, its partition no longer assigned here) is forgotten in the
	// journal before its files go, when the metadata event comes, or at
	// the next start by the sweep (see the package doc) if this node was
	// down or stopping then; until that sweep ran (it needs a metadata
	// quorum) the journal does not trim and grows with every round.
	Journal bool

	// SyncGroup, when set, merges the log syncs of the node's replicas
	// with those of every other log sharing the group into one flush of
	// their file system per round (wal.SyncGroup: syncfs(2) on Linux),
	// instead of one fdatasync per replica log. Not with Journal. See
	// wal.SyncGroup for the trade-offs; a failed group fails every later
	// sync through it, so a node reopened after a failure needs a new one.
	SyncGroup *wal.SyncGroup

	// MaxBatchBytes is the largest encoded batch Append accepts.
	// Default DefaultMaxBatchBytes (4 MiB).
	MaxBatchBytes int
	// ReplicaLagTime is how long an ISR member may stay behind the leader
	// before the leader asks the controller to shrink it out of the ISR.
	// Default DefaultReplicaLagTime (2 s, meta's default SessionTimeout:
	// set it to the cluster's SessionTimeout).
	ReplicaLagTime time.Duration
	// Clock gives the time for record timestamps and retention by age.
	// Default time.Now. Timers use the runtime's clock.
	Clock func() time.Time
	// Logger receives the replicas' warnings. Default: discard.
	Logger *slog.Logger

	// journalSegmentSize, when set (tests), is the journal's
	// wal.JournalOptions.SegmentSize.
	journalSegmentSize int64
}

func (c *Config) validate() error {
	switch {
	case c.ID == 0:
		return fmt.Errorf("%w: Config.ID is 0", ErrInvalidArgument)
	case c.Meta == nil:
		return fmt.Errorf("%w: Config.Meta is nil", ErrInvalidArgument)
	case c.Journal && c.Durability != wal.SyncAlways:
		return fmt.Errorf("%w: Config.Journal needs Durability SyncAlways, not %v", ErrInvalidArgument, c.Durability)
	case c.Journal && c.SyncGroup != nil:
		return fmt.Errorf("%w: Config.Journal and Config.SyncGroup exclude each other", ErrInvalidArgument)
	case c.Replication == nil || c.Forward == nil:
		return fmt.Errorf("%w: Config.Replication and Config.Forward are required", ErrInvalidArgument)
	case c.Dir == "" && c.FS != nil:
		return fmt.Errorf("%w: Config.Dir is required with an FS", ErrInvalidArgument)
	case c.MaxBatchBytes < 0 || c.ReplicaLagTime < 0 || c.SyncTimeout < 0:
		return fmt.Errorf("%w: negative MaxBatchBytes, ReplicaLagTime or SyncTimeout", ErrInvalidArgument)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.FS == nil {
		if c.Dir == "" {
			c.FS = wal.NewMemFS()
		} else {
			c.FS = wal.OSFS{}
		}
	}
	if c.Dir == "" {
		c.Dir = "/replication"
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = wal.DefaultSyncTimeout // the logs' default: the Manager's own waits use it too
	}
	if c.ReplicaLagTime == 0 {
		c.ReplicaLagTime = DefaultReplicaLagTime
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// tickInterval is the period of the Manager's one timer (lag checks,
// retransmissions, retention): an eighth of the lag time, within bounds.
func (c *Config) tickInterval() time.Duration {
	return min(max(c.ReplicaLagTime/8, 10*time.Millisecond), 250*time.Millisecond)
}
