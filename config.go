package replog

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/replication"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// NodeID identifies a node of a cluster: non-zero, unique in the cluster.
type NodeID = uint64

// Record is one record of a partition: what Append takes and Read returns.
//
// Offset is assigned by the log (ignored on Append). A zero Timestamp on
// Append means the clock (Config.Clock) of the node Append is called on,
// as a Kafka producer stamps CreateTime; timestamps keep nanoseconds and
// must lie between 1970 and 2262. Key and Value keep the difference
// between nil and empty.
type Record = log.Record

// Header is one record header: a string key and an optional value.
type Header = log.Header

// Durability is what an acknowledged write promises when a machine
// crashes. It applies to every partition log of the node. Replication
// across nodes is a second line of defence whatever the choice: an AcksAll
// write is on MinInSyncReplicas nodes before it is acknowledged.
type Durability int8

const (
	// SyncAlways syncs (fdatasync) every group commit of a partition log
	// before its appends are acknowledged and before a follower reports
	// them to the leader. An acknowledged write survives the crash of the
	// process, the OS or the machine, on every node that acknowledged it.
	// The default.
	SyncAlways Durability = iota

	// SyncPeriodic writes at once and syncs every Config.SyncInterval.
	//
	// WARNING: a crash of the OS or the machine LOSES up to SyncInterval of
	// acknowledged writes on that node. An AcksAll write survives only as
	// long as one replica that held it did not lose it: machines that
	// crash together (one power failure, one rack) can lose acknowledged
	// writes. A process crash alone loses nothing.
	SyncPeriodic

	// SyncNever writes at once and syncs only when a segment rolls and on
	// Close.
	//
	// WARNING: a crash of the OS or the machine LOSES AN UNBOUNDED amount of
	// acknowledged writes on that node; data is safe only while enough
	// replicas stay up, as with Kafka's default settings. Use it where the
	// replicas are on independent machines and that risk is accepted, or
	// for tests and benchmarks. A process crash alone loses nothing.
	SyncNever
)

// String returns the policy's name.
func (d Durability) String() string {
	switch d {
	case SyncAlways:
		return "SyncAlways"
	case SyncPeriodic:
		return "SyncPeriodic"
	case SyncNever:
		return "SyncNever"
	}
	return fmt.Sprintf("Durability(%d)", int8(d))
}

// wal returns the wal package's policy.
func (d Durability) wal() wal.Durability {
	switch d {
	case SyncPeriodic:
		return wal.SyncInterval
	case SyncNever:
		return wal.SyncNever
	}
	return wal.SyncAlways
}

// Defaults of Config.
const (
	DefaultSyncTimeout    = 10 * time.Second
	DefaultSyncInterval   = 100 * time.Millisecond
	DefaultSessionTimeout = 2 * time.Second
	DefaultMaxBatchBytes  = 4 << 20
)

// Config configures one node. Zero fields take the documented defaults.
type Config struct {
	// ID is this node's ID: non-zero, unique in the cluster, in Peers.
	ID NodeID

	// Peers lists every node of the cluster at bootstrap, ID included; the
	// same list on every node. It is read only when Dir holds no metadata
	// yet.
	Peers []NodeID

	// Dir is the node's data directory: the metadata in Dir/meta.db and
	// one directory of wal segments per partition replica under
	// Dir/partitions. Open creates it. "" keeps everything in memory (FS
	// decides where the logs go): a node in memory loses its data when it
	// stops, so use "" for tests, or for clusters whose every node is in
	// memory.
	Dir string

	// Transport carries this node's messages to and from the other nodes.
	// Required. Open starts it and the Cluster owns it from then on: Close
	// closes it. Use transport/tcp between processes; a LocalCluster uses
	// a transport.MemNetwork.
	Transport transport.Transport

	// Durability is what an acknowledged write promises when a machine
	// crashes: SyncAlways (the default, nothing acknowledged is lost),
	// SyncPeriodic or SyncNever (faster, and LOSE acknowledged writes when
	// machines crash; read their documentation before using them).
	Durability Durability

	// SyncInterval is the period of SyncPeriodic. Default 100ms.
	SyncInterval time.Duration

	// Journal (SyncAlways only) makes the node's partition logs share one
	// redo journal: each log writes its rounds without syncing them, and
	// the journal syncs what every partition wrote meanwhile with one
	// write and one fdatasync. A node with many partitions then pays one
	// device flush per round instead of one per partition, for every byte
	// written twice. Same guarantees as without it. Measured on one shared
	// disk (examples/bench): about 1.5 times the records/s of plain logs
	// with 256 single-record producers, about the same with 16 producers
	// of 100-record batches, but a longer tail (p99.9 about 110 ms against
	// 27 ms: checkpoints write the partition logs back in bursts). Off by
	// default. The journal trims itself only past the records of every
	// partition log it holds records of: a replica whose topic was deleted
	// while its node was down is forgotten by the sweep at the next start,
	// once the metadata has a quorum; until then the journal grows.
	Journal bool

	// SyncGroup, when set, merges the syncs of the node's partition logs, and
	// of every other node's sharing the group, into one flush of their file
	// system per round (syncfs(2) on Linux; see wal.SyncGroup) instead of one
	// fdatasync per partition log. Same guarantees as without it on Linux 5.8
	// and later (see below). A log's sync may wait for the flush already
	// running and then its own: keep SyncTimeout above two flushes of the
	// whole file system under load. Measured on one shared disk
	// (examples/bench -syncgroup, 3 nodes in one process sharing one group,
	// medians of 4 interleaved pairs): about 1.5 times the records/s with 256
	// single-record producers, 1.3 times with 16 producers of 100-record
	// batches, a single producer's p50 about 0.9 times, and a p99 about half
	// as long under load. The costs: syncfs writes back every dirty file of
	// the file system, other programs' too, so one of them writing gigabytes
	// delays the node's syncs; before Linux 5.8 syncfs does not report
	// write-back errors (do not use a group there); and a failed flush fails
	// every later sync through the group, so nodes reopened after a storage
	// failure need a new one, and nodes sharing one fail together. Not with
	// Journal. Nil (the default): each partition log syncs its own file.
	SyncGroup *wal.SyncGroup

	// SyncTimeout is the deadline of one sync of a partition log. A sync
	// still blocked after it fails the appends waiting for it with
	// ErrStorageStalled, and the node gives up leading the partitions on
	// that storage. Default 10s. Keep it well above the time the disk
	// needs to write what a sync may find queued: under SyncAlways one
	// round; under SyncNever and SyncInterval a segment roll also waits for
	// the write-back already queued, which takes long when producers
	// outrun the disk (measured here: 0.7–0.8 s at 880k records/s).
	SyncTimeout time.Duration

	// SessionTimeout is how long the cluster waits without hearing from a
	// node before it declares it dead and moves its partition leaderships
	// (a crash costs appends at most about twice this). Shorter fails over
	// faster and risks declaring a slow node dead. It also bounds the
	// controlled shutdown in Close. Default 2s; at least 10ms.
	SessionTimeout time.Duration

	// AutoCreate, if non-nil, makes Append to a topic that does not exist
	// create it with this configuration first. nil: such appends return
	// ErrUnknownTopic. Read never creates topics.
	AutoCreate *TopicConfig

	// MaxBatchBytes is the largest batch Append accepts, encoded (about
	// 70 bytes of batch header plus 10 to 20 bytes per record beyond keys,
	// values and headers). Larger batches get ErrRecordTooLarge.
	// Default 4 MiB. A batch travels as one transport message: Open
	// refuses a value whose messages the Transport cannot carry, if it
	// declares a limit (transport.MessageLimiter; transport/tcp's is
	// MaxFrameSize, 16 MiB by default). Give every node the same value:
	// a follower cannot take a batch larger than its own limit, and drops
	// out of the ISR of a leader that accepted one (logged as an error).
	// From 68 bytes (a batch of one empty record) to 1 GiB.
	MaxBatchBytes int

	// Logger receives the node's log lines. Default: discard.
	Logger *slog.Logger

	// The fields below are additions to the contract, for tests and
	// tuning.

	// FS is the file system the partition logs live on. nil: the
	// operating system's files under Dir, or, when Dir is "", a fresh
	// in-memory wal.MemFS. Tests pass a wal.MemFS (crashes), wal.StallFS
	// (stalled syncs) or wal.FaultFS (failing writes). The metadata
	// (meta.db) does not go through FS: it is in Dir on the OS, or in
	// memory when Dir is "". Give each node an FS of its own: with Dir ""
	// the logs live in /partitions of the FS, so nodes sharing one would
	// write each other's files (a LocalCluster takes one per node with
	// WithFS).
	FS wal.FS

	// SegmentSize is the size at which a partition log starts a new wal
	// segment. Retention deletes whole segments, so it is also the
	// granularity of RetentionBytes and RetentionTime. Default: the wal's
	// (64 MiB).
	SegmentSize int64

	// Clock gives the time of record timestamps and of retention by time.
	// Default time.Now. Session timeouts and sync deadlines use timers,
	// not Clock.
	Clock func() time.Time

	// memStore keeps an in-memory node's metadata across a Stop and
	// Restart of a LocalCluster node.
	memStore *meta.MemStore
}

// validate checks c and fills in the defaults.
func (c *Config) validate() error {
	const op = "open"
	switch {
	case c.ID == 0:
		return invalid(op, "Config.ID is 0")
	case !slices.Contains(c.Peers, c.ID):
		return invalid(op, "Config.Peers %v lacks ID %d", c.Peers, c.ID)
	case slices.Contains(c.Peers, 0):
		return invalid(op, "Config.Peers %v holds ID 0", c.Peers)
	case c.Transport == nil:
		return invalid(op, "Config.Transport is nil")
	case c.Durability < SyncAlways || c.Durability > SyncNever:
		return invalid(op, "Config.Durability %v", c.Durability)
	case c.Journal && c.Durability != SyncAlways:
		return invalid(op, "Config.Journal needs Durability SyncAlways, not %v", c.Durability)
	case c.Journal && c.SyncGroup != nil:
		return invalid(op, "Config.Journal and Config.SyncGroup exclude each other")
	case c.SyncInterval < 0, c.SyncTimeout < 0, c.SessionTimeout < 0:
		return invalid(op, "negative duration in Config")
	case c.MaxBatchBytes < 0, c.SegmentSize < 0:
		return invalid(op, "negative size in Config")
	}
	peers := slices.Clone(c.Peers)
	slices.Sort(peers)
	if len(slices.Compact(peers)) != len(c.Peers) {
		return invalid(op, "Config.Peers %v holds an ID twice", c.Peers)
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.SessionTimeout < 10*time.Millisecond {
		return invalid(op, "Config.SessionTimeout %v is below 10ms", c.SessionTimeout)
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	// The partition logs refuse to open outside these bounds, and a
	// replica that cannot open leaves its Appends and Reads waiting.
	if c.MaxBatchBytes < log.BatchHeaderSize+7 || c.MaxBatchBytes > 1<<30 {
		return invalid(op, "Config.MaxBatchBytes %d out of range %d to %d", c.MaxBatchBytes, log.BatchHeaderSize+7, 1<<30)
	}
	if c.SegmentSize != 0 && c.SegmentSize < wal.SegmentHeaderSize+wal.FrameHeaderSize {
		return invalid(op, "Config.SegmentSize %d below %d", c.SegmentSize, wal.SegmentHeaderSize+wal.FrameHeaderSize)
	}
	if lim, ok := c.Transport.(transport.MessageLimiter); ok {
		if need := replication.LargestMessage(c.MaxBatchBytes); need > lim.MaxMessageSize() {
			return invalid(op, "Config.MaxBatchBytes %d makes messages of up to %d bytes, and the transport carries at most %d: "+
				"raise its limit (tcp.Config.MaxFrameSize) or lower MaxBatchBytes", c.MaxBatchBytes, need, lim.MaxMessageSize())
		}
	}
	if c.AutoCreate != nil {
		if err := c.AutoCreate.check(op, len(c.Peers)); err != nil {
			return err
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.FS == nil && c.Dir == "" {
		c.FS = wal.NewMemFS()
	}
	return nil
}

// tickInterval is the metadata raft's tick: a fortieth of the session
// timeout, at most 100ms. A raft election times out after 10 to 20 ticks,
// so one election round after a crash of the old controller takes at most
// half a SessionTimeout (a split vote takes more rounds). The new
// controller counts the dead node's session from when it last heard from
// it, so a crash costs about max(SessionTimeout, election) plus the
// hand-over, within 2 × SessionTimeout unless the election itself takes
// longer than that.
func (c *Config) tickInterval() time.Duration {
	return min(100*time.Millisecond, c.SessionTimeout/40)
}
