package meta

import (
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// timeoutOpen bounds the wait for another process's lock on meta.db.
const timeoutOpen = 2 * time.Second

// Sender sends one subsystem's messages to another node. mux.Sender is
// one. msg[0] is reserved for the sender's tag and is overwritten; the
// sender owns msg afterwards. Send must not block; it may drop msg.
type Sender interface {
	Send(to uint64, msg []byte) error
}

// Config configures a Node. Zero fields take the defaults documented on
// them.
type Config struct {
	// ID is this node's ID: non-zero, unique in the cluster, in Peers.
	ID uint64
	// Peers lists every node at bootstrap, ID included; the same list on
	// every node. It is read only when Dir holds no raft log yet.
	Peers []uint64
	// Dir is the directory for meta.db (the raft log, hard state and
	// snapshot, in bbolt). "" keeps everything in memory: a restart then
	// starts from nothing (see MemStore), so use "" only for tests and for
	// clusters that are all in memory.
	Dir string
	// MemStore, with Dir "", keeps the raft log in memory across Opens of
	// this node, so that it can restart with its state. Without it a node
	// in memory must never rejoin its group after Close: raft would find
	// its log lost and stop the node.
	MemStore *MemStore
	// Raft sends raft messages (mux.TagRaft); the peers' HandleRaft must
	// receive them. Required.
	Raft Sender
	// Meta sends heartbeats to the controller (mux.TagMeta); the peers'
	// HandleMeta must receive them. Required.
	Meta Sender
	// SessionTimeout is how long the controller waits without a heartbeat
	// before it fences a node. Default 2s. Must be at least 4 ticks.
	SessionTimeout time.Duration
	// TickInterval is the raft tick. Default 100ms. Raft elections time
	// out after ElectionTicks ticks, leaders heartbeat every tick.
	TickInterval time.Duration
	// ElectionTicks is raft's election timeout in ticks. Default 10.
	// Leases last ElectionTicks/2 ticks (see doc.go).
	ElectionTicks int
	// SnapshotEntries: a state-machine snapshot is taken, and the log
	// compacted, every SnapshotEntries applied entries, or every as many
	// entries as there are topics if that is more. Default 1000.
	SnapshotEntries uint64
	// WatchBuffer bounds each Watcher's queue of undelivered events; a
	// watcher that falls further behind gets EventResync. Default 4096.
	WatchBuffer int
	// Logger receives the node's and raft's log lines. Default: discard.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.ID == 0 {
		return fmt.Errorf("%w: node ID 0", ErrInvalidArgument)
	}
	if !slices.Contains(c.Peers, c.ID) {
		return fmt.Errorf("%w: peers %v lack ID %d", ErrInvalidArgument, c.Peers, c.ID)
	}
	if slices.Contains(c.Peers, 0) {
		return fmt.Errorf("%w: peer ID 0", ErrInvalidArgument)
	}
	sorted := slices.Sorted(slices.Values(c.Peers))
	if len(slices.Compact(sorted)) != len(c.Peers) {
		return fmt.Errorf("%w: duplicate peers in %v", ErrInvalidArgument, c.Peers)
	}
	if c.Dir != "" && c.MemStore != nil {
		return fmt.Errorf("%w: both Dir and MemStore", ErrInvalidArgument)
	}
	if c.Raft == nil || c.Meta == nil {
		return fmt.Errorf("%w: Raft and Meta senders are required", ErrInvalidArgument)
	}
	if c.TickInterval == 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 2 * time.Second
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 1000
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TickInterval < 0 || c.ElectionTicks < 2 || c.WatchBuffer < 1 {
		return fmt.Errorf("%w: tick %v, election ticks %d, watch buffer %d", ErrInvalidArgument, c.TickInterval, c.ElectionTicks, c.WatchBuffer)
	}
	if c.SessionTimeout < 4*c.TickInterval {
		return fmt.Errorf("%w: session timeout %v under 4 ticks of %v", ErrInvalidArgument, c.SessionTimeout, c.TickInterval)
	}
	return nil
}

// sessionTicks is SessionTimeout in ticks.
func (c *Config) sessionTicks() int64 { return int64(c.SessionTimeout / c.TickInterval) }

// heartbeatTicks: nodes heartbeat the controller four times per session.
func (c *Config) heartbeatTicks() int64 { return max(1, c.sessionTicks()/4) }

// graceTicks is the least a new controller waits, from taking office,
// before it fences a node it has not heard from: two heartbeat intervals.
// A live node heartbeats at once when it learns of a new raft leader and
// then every heartbeatTicks, so one lost heartbeat does not fence it.
func (c *Config) graceTicks() int64 { return 2 * c.heartbeatTicks() }

// retryTicks: a proposal or read not answered by then is sent again.
func (c *Config) retryTicks() int64 { return int64(2 * c.ElectionTicks) }

// leaseTicks is how long a lease lasts after the contact that grants it.
func (c *Config) leaseTicks() int64 { return int64(c.ElectionTicks / 2) }
