package meta

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// inboxSize bounds the queues between the transport's handlers and the
// driver. A raft message that finds its queue full waits up to a tick; a
// heartbeat is dropped at once (the next one follows soon).
const inboxSize = 1024

// Node is one member of the metadata raft group. Its driver goroutine (run)
// owns the raft RawNode, the storage and the controller; everything else
// talks to it over channels, or reads the atomics it publishes. The driver
// is started by Open and exits on Close or on a storage error.
type Node struct {
	cfg Config
	log *slog.Logger
	st  *storage

	state   atomic.Pointer[State]
	offsets atomic.Pointer[offsetTable]
	inc     atomic.Uint64 // this node's incarnation, once registered
	leader  atomic.Uint64 // raft leader (the controller), 0 if unknown
	// lease: local reads are fresh while clock() is below it, and this
	// node has applied everything it knows committed (commit).
	lease   atomic.Int64
	commit  atomic.Uint64
	session atomic.Int64 // InSession while clock() is below it
	// hbAcked: the clock reading at which the latest heartbeat that a
	// controller acknowledged left this node (see updateSession).
	hbAcked atomic.Int64
	start   time.Time // clock's origin, with its monotonic reading
	failure atomic.Pointer[error]
	// appliedIdx: waits for other nodes' applies, answers theirs.
	appliedIdx appliedIndexes
	watchers   struct {
		sync.Mutex
		set map[*Watcher]struct{}
	}

	raftIn  chan inbound
	metaIn  chan heartbeatMsg
	propc   chan *proposal
	readc   chan *readReq
	resignc chan *resignReq
	snapc   chan snapDone // capacity 1
	stop    chan struct{}
	done    chan struct{} // closed when the driver has exited
	once    sync.Once

	d driver // owned by the driver goroutine
}

// inbound is a raft message and the clock reading when it arrived.
type inbound struct {
	m  *pb.Message
	at time.Duration
}

// proposal is a command waiting to be applied, on behalf of a caller.
type proposal struct {
	ctx  context.Context
	cmd  *command
	data []byte
	last int64 // tick last proposed
	resp chan result
}

// readReq is a caller waiting for a ReadIndex barrier.
type readReq struct {
	ctx   context.Context
	id    uint64
	index uint64 // from the ReadState; 0 until then
	last  int64
	resp  chan struct{}
}

// Open starts a Node: it opens (or creates) Dir/meta.db, bootstraps the
// raft group from Peers on first start, replays the log into the State and
// starts the driver. The node registers itself with a new incarnation in
// the background; Incarnation reports it once applied. Wire the node's
// HandleRaft and HandleMeta to the transport before or right after Open.
func Open(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var st *storage
	var err error
	switch {
	case cfg.Dir != "":
		st, err = openStorage(filepath.Join(cfg.Dir, "meta.db"))
	case cfg.MemStore != nil:
		st, err = cfg.MemStore.acquire()
	default:
		st, err = openStorage("")
	}
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID), st: st,
		raftIn: make(chan inbound, inboxSize), metaIn: make(chan heartbeatMsg, inboxSize),
		propc: make(chan *proposal), readc: make(chan *readReq), resignc: make(chan *resignReq),
		snapc: make(chan snapDone, 1),
		stop:  make(chan struct{}), done: make(chan struct{})}
	n.watchers.set = map[*Watcher]struct{}{}
	n.appliedIdx.init()
	n.start = time.Now()
	if err := n.d.init(n); err != nil {
		_ = n.closeStorage() // the init error is the one to report
		return nil, err
	}
	go n.run()
	return n, nil
}

// onHeartbeatAck takes the controller's acknowledgement of this node's
// heartbeat sent at clock reading sent (ns).
func (n *Node) onHeartbeatAck(from, sent uint64) {
	if from != n.leader.Load() || time.Duration(sent) > n.clock() {
		return // not from the controller this node knows, or not ours
	}
	n.noteAcked(time.Duration(sent))
}

// noteAcked raises hbAcked to t.
func (n *Node) noteAcked(t time.Duration) {
	for {
		old := n.hbAcked.Load()
		if int64(t) <= old || n.hbAcked.CompareAndSwap(old, int64(t)) {
			return
		}
	}
}

// clock is the time since Open, on the monotonic clock.
func (n *Node) clock() time.Duration { return time.Since(n.start) }

// ID returns the node's ID.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Close stops the driver, waits for it and closes meta.db. Calls in
// flight return ErrClosed. Close is idempotent.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		close(n.stop)
		<-n.done
		err = n.closeStorage()
	})
	return err
}

func (n *Node) closeStorage() error {
	if n.cfg.MemStore != nil {
		n.cfg.MemStore.release()
		return nil
	}
	return n.st.close()
}

// Err returns the storage error that stopped the node, or nil.
func (n *Node) Err() error {
	if e := n.failure.Load(); e != nil {
		return *e
	}
	return nil
}

// closedErr is what calls return once the driver is gone.
func (n *Node) closedErr() error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return ErrClosed
}

// HandleRaft takes one inbound raft message (payload after the mux tag).
// It has transport.Handler's signature: register it for mux.TagRaft. It
// queues the message for the driver; when the queue is full it waits for
// room, pushing back on the sender's link, for at most one TickInterval
// (the transport is shared with replication: a stalled driver must not
// hold its traffic for long), then drops the message; raft resends.
func (n *Node) HandleRaft(from uint64, msg []byte) {
	m := new(pb.Message)
	if err := proto.Unmarshal(msg, m); err != nil || m.GetFrom() != from || m.GetTo() != n.cfg.ID {
		n.log.Debug("meta: dropped bad raft message", "from", from, "err", err)
		return
	}
	// Stamped now: a lease counts from when an ack arrived, not from when
	// a busy driver got to it.
	in := inbound{m: m, at: n.clock()}
	select {
	case n.raftIn <- in:
		return
	default:
	}
	t := time.NewTimer(n.cfg.TickInterval)
	defer t.Stop()
	select {
	case n.raftIn <- in:
	case <-n.done:
	case <-t.C:
		n.log.Debug("meta: dropped raft message: driver busy", "from", from)
	}
}

// HandleMeta takes one inbound meta message (payload after the mux tag).
// Register it for mux.TagMeta. It never blocks.
func (n *Node) HandleMeta(from uint64, msg []byte) {
	m, err := decodeMeta(msg)
	if err != nil || m.node != from {
		n.log.Debug("meta: dropped bad meta message", "from", from, "err", err)
		return
	}
	switch m.kind {
	case metaHeartbeat:
		select {
		case n.metaIn <- heartbeatMsg{node: m.node, inc: m.val, sent: m.sent}:
		default:
		}
	case metaAsk:
		n.onAsk(from, m.val)
	case metaApplied:
		n.onApplied(from, m.val)
	case metaHeartbeatAck:
		n.onHeartbeatAck(from, m.val)
	}
}

// newNonce returns a random non-zero registration nonce.
func newNonce() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("meta: nonce: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]) | 1, nil
}

// run is the driver loop. It owns n.d and exits on stop or on a storage
// error (recorded for Err).
func (n *Node) run() {
	defer close(n.done)
	defer n.d.snapWG.Wait()
	defer n.wakeWatchers()
	defer func() {
		// Raft panics on broken invariants of its log, e.g. a node that
		// lost its log (Dir "" without a MemStore) rejoining its group.
		// Stop this node, not the process.
		if r := recover(); r != nil {
			err := fmt.Errorf("meta: raft stopped: %v", r)
			n.log.Error("meta: node stopped", "err", err)
			n.failure.Store(&err)
		}
	}()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	d := &n.d
	for {
		var err error
		select {
		case <-n.stop:
			return
		case <-ticker.C:
			d.tick()
		case in := <-n.raftIn:
			d.step(in.m, in.at)
		case h := <-n.metaIn:
			d.heartbeat(h)
		case p := <-n.propc:
			d.propose(p)
		case r := <-n.readc:
			d.read(r)
		case r := <-n.resignc:
			d.resign(r)
		case sd := <-n.snapc:
			err = d.snapshotDone(sd)
		}
		if err == nil {
			err = d.handleReady()
		}
		if err != nil {
			n.log.Error("meta: node stopped", "err", err)
			n.failure.Store(&err)
			return
		}
	}
}

// send hands v to the driver over c, bounded by ctx.
// A ctx that already ended fails at once: a select among ready cases picks
// at random, and the call would otherwise go on half the time.
func send[T any](ctx context.Context, n *Node, c chan<- T, v T) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	select {
	case c <- v:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("meta: %w", ctx.Err())
	case <-n.done:
		return n.closedErr()
	}
}

// newRawNode configures raft: PreVote and CheckQuorum on, ReadOnlySafe
// (ReadIndex always confirms leadership with a quorum round; the lease
// path is ours, see doc.go).
func newRawNode(cfg *Config, st *storage, applied uint64) (*raft.RawNode, error) {
	return raft.NewRawNode(&raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   st,
		Applied:                   applied,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    raftLogger{cfg.Logger},
		StepDownOnRemoval:         true,
	})
}
