// Package meta is replog's cluster metadata: nodes, topics, partition
// assignments, leaders, epochs, ISRs and committed consumer offsets, kept
// by a raft group (go.etcd.io/raft/v3) of all the nodes and stored in bbolt;
// the controller that runs on the raft leader; lease-checked reads; and
// events for the subsystems that act on the metadata.
//
// # Using a Node
//
// Open(Config) starts a Node. The host wires it to the transport it shares
// with replication through internal/mux:
//
//	m := mux.New(transport)
//	node, err := meta.Open(meta.Config{ID: 1, Peers: []uint64{1, 2, 3}, Dir: dir,
//		Raft: m.Sender(mux.TagRaft), Meta: m.Sender(mux.TagMeta)})
//	m.Handle(mux.TagRaft, node.HandleRaft)
//	m.Handle(mux.TagMeta, node.HandleMeta)
//	m.Start()
//
// Reads:
//   - State returns the applied metadata, an immutable *State behind an
//     atomic pointer: no lock, and State.Topic allocates nothing. It may
//     trail the group by what is still in flight.
//   - Topic and Topics are lease-checked. On the raft leader the local State
//     is fresh while a quorum acknowledged the leader within the lease
//     (ElectionTicks/2 ticks) and the leader has applied an entry of its
//     own term; on a follower while it heard from the leader within the
//     lease. Otherwise, and whenever the topic is missing locally, they
//     first run a Barrier. A topic whose CreateTopic returned is therefore
//     found on every node. A follower's lease read is not linearizable: it
//     may show a topic just deleted or an older partition record, by at
//     most what is in flight to it, and in the worst case (its leader cut
//     off from the majority, still sending heartbeats until CheckQuorum
//     makes it step down) by ElectionTicks + ElectionTicks/2 ticks, 1.5 s by
//     default. Partition leadership itself is protected by epochs, not by
//     this read. LinearizableTopic and Barrier always take the ReadIndex
//     path and are linearizable.
//   - Barrier is one ReadIndex round trip (raft's ReadOnlySafe: the leader
//     confirms its leadership with a quorum), then a wait until this node
//     has applied that index. On a node cut off from the quorum it returns
//     the context's error: never stale data passed off as fresh.
//
// Lease safety rests on raft's CheckQuorum and PreVote: a follower that
// heard from its leader within the election timeout does not vote for
// another, so no new leader can commit while a lease of ElectionTicks/2
// granted by the old one lasts, provided clocks tick at rates within a
// factor of two of each other and a message is delivered within the other
// half of the election timeout. A lease lasts ElectionTicks/2 ×
// TickInterval on the node's monotonic clock from the contact that grants
// it, not a count of ticks: ticks come late or not at all when the driver
// is slow or stalled (on its bbolt sync, say), and election timeouts,
// which are counted in ticks, only grow then. A closed node holds no
// lease. A node just opened has forgotten whom it heard from, and raft
// would grant votes at once: it grants none for ElectionTicks ticks
// (leadership transfers excepted, whose leader gave its lease up). This makes the leader's lease reads linearizable under those
// assumptions; a follower's are bounded-stale, as said above.
//
// Writes (CreateTopic, DeleteTopic, AlterISR, CommitOffset, Drain,
// SetUnhealthy) are raft proposals. A follower's proposal is forwarded to
// the leader by raft. The call returns once the command is applied on this
// node, with its outcome; a proposal that raft dropped (no leader) or that
// the network lost is proposed again every 2×ElectionTicks ticks, and at
// once when a new leader becomes known, until the caller's context ends
// (ReadIndex requests likewise). Requests carry (node, registration nonce,
// sequence number); the state machine remembers the last 4096 per proposer
// and skips a copy applied before, so a retry never applies twice. After a
// context error the outcome is unknown.
//
// DeleteTopic waits, after its command is applied, until every node holding
// a replica of the topic has applied it too (or is fenced): it asks each
// node over mux.TagMeta, which answers once it has applied that index, and
// asks again every heartbeat interval. So once it returns, no node serves
// the deleted topic from a lagging State (see waitApplied).
//
// Events: Watch returns a Watcher that receives typed Events in apply order
// (topic created/deleted, partition changed, node registered, fenced,
// unfenced, changed). Apply never waits for a watcher: a watcher more than
// Config.WatchBuffer events behind loses its queue and gets one
// EventResync, whose State is the one to rebuild from. After Open the log
// replay from the last local snapshot produces events again; installing a
// snapshot from the leader produces EventResync.
//
// # The controller
//
// The raft leader runs the controller, a deterministic core (controller.go:
// no IO, no clock, no goroutine; time is the driver's tick count). Every
// node heartbeats the controller over mux.TagMeta four times per
// SessionTimeout (and at once when it registers or learns of a new
// leader), and the controller acknowledges each heartbeat it takes. A node
// counts itself in session (InSession) for SessionTimeout after its latest
// acknowledged heartbeat left it, the raft leader also after a quorum's
// acks: so a node stops counting itself in session before the controller
// can have fenced it, whichever way its links fail. Without a controller
// (an election running longer than what is left of a session) no node is
// in session. The controller
//   - fences a node whose incarnation has not heartbeated for
//     SessionTimeout: it leaves every ISR where it is not the last member,
//     and each partition it led gets the first eligible ISR member in
//     replica order as leader, epoch+1, or goes offline (leader 0) if there
//     is none: no unclean election;
//   - unfences a fenced node that heartbeats again; offline partitions whose
//     ISR has an eligible member get it as leader;
//   - hands leadership back to the preferred replica (Replicas[0]) once it
//     is eligible and back in the ISR;
//   - on taking office runs every unfenced node's session on from the last
//     time this node heard from it (any raft message or heartbeat, also
//     while it was a follower or candidate). The old controller, which as
//     raft leader sent it a message every tick, is so fenced
//     max(SessionTimeout, election) after it died, not after the election
//     plus a whole fresh session. Every other node also gets at least half
//     a SessionTimeout (two heartbeat intervals) from the takeover to reach
//     the new controller: a live node heartbeats a new raft leader as soon
//     as it learns of it, and any raft message it sent during the election
//     (a vote) already counts.
//
// A node registers with a new incarnation on every Open (the state machine
// numbers them). The registration ends the old incarnation's session at
// once, as a fence would: its leaderships move (or, as last ISR member, get
// epoch+1), so a fast restart is never taken for continuity.
//
// Partition leaders change their ISR with AlterISR, applied only with the
// current leader epoch and partition epoch; joining members must be
// eligible. Drain (controlled shutdown) and SetUnhealthy (stalled storage)
// make a node ineligible: its leaderships move to other eligible ISR
// members where there are any. Resign, called by a node about to stop
// after its Drain, hands the controller's role to the voter with the
// longest log among those that answered within a lease (raft's leadership
// transfer), so that the cluster does not wait an election timeout for a
// new controller; while the role moves, the leader drops new proposals
// and their proposers resend them.
//
// New topics are placed round-robin over the live nodes in ID order,
// starting one node further for each topic created: replicas and preferred
// leaderships are balanced within a topic (±1) and rotate across topics.
//
// # The driver
//
// One goroutine per Node (started by Open, stopped and waited for by Close)
// owns the raft RawNode, the storage and the controller. It ticks every
// TickInterval, steps inbound messages, and for each Ready persists entries,
// hard state and snapshot in one synced bbolt transaction, then sends, then
// applies, then advances. A storage error stops the node: Err reports it,
// every call returns ErrClosed. So does a raft panic (raft panics on a
// broken invariant of its log, e.g. a node that lost its log rejoining);
// the leader also ignores the append rejections of such a node, which
// would otherwise make raft resend the same append in a hot loop. Nothing polls: an idle group costs raft's
// heartbeats (one per tick per follower) and the controller heartbeats.
//
// HandleRaft queues inbound raft messages for the driver; when the queue
// (1024) is full it waits for room, pushing back on the sending link, for at
// most one TickInterval, then drops the message (raft resends). HandleMeta
// drops heartbeats that find the queue full.
//
// Locks: the watcher set's mutex is taken before a Watcher's own mutex,
// never the other way round; the offset table has its own RWMutex, taken
// alone.
//
// # Formats
//
// The raft log lives in Dir/meta.db (bbolt), bucket "raft":
//
//	"hardstate"           protobuf raftpb.HardState
//	"snapshot"            protobuf raftpb.Snapshot; Data is a state snapshot
//	"e" | u64 big-endian  protobuf raftpb.Entry at that index, contiguous
//	                      up to the last index; those at or below the
//	                      snapshot index are ignored on reopen
//
// A normal entry's data is a command; a snapshot's data is the state:
//
//	command:   +------+------------------------------------------+
//	           | 0x01 | JSON {op, from, seq, node, topic, ...}   |
//	           +------+------------------------------------------+
//	snapshot:  +------+------------------------------------------+
//	           | 0x01 | JSON {index, created, nodes, topics,     |
//	           |      |       offsets, dedup}, every list sorted |
//	           +------+------------------------------------------+
//
// Equal states encode to equal bytes. A snapshot is taken every
// SnapshotEntries applied entries (at least one entry per topic), and the
// log compacted up to SnapshotEntries/2 entries before it; a follower
// behind the compaction point receives the snapshot (MsgSnap) and replaces
// its state with it.
//
// On the wire, after the mux tag: raft messages are protobuf
// raftpb.Message; meta messages are
//
//	+------+-----------------------+---------------+--------------+
//	| kind | uvarint nodeID (from) | uvarint value | uvarint sent |
//	+------+-----------------------+---------------+--------------+
//	  0x01 heartbeat, to the controller: value = incarnation,   heartbeats
//	       sent = the sender's clock (ns since Open)            only
//	  0x02 ask: "answer once you have applied index value"
//	  0x03 applied: the answer, value = the sender's applied index
//	  0x04 heartbeat ack, from the controller: value = the heartbeat's sent
//
// # Caller's duties
//
// Give every node the same Peers at bootstrap. Wire HandleRaft and
// HandleMeta to the transport. Treat everything reachable from a State or
// an Event as read-only. Close the Node.
package meta
