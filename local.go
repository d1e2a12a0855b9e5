package replog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// LocalCluster runs n nodes, IDs 1 to n, in this process over a
// transport.MemNetwork: for tests, examples and programs that want a
// replicated log without a network. Its methods are safe for concurrent
// use.
//
// # Faults
//
// A LocalCluster is built for fault tests (crash, stall, network):
//
//   - Network returns the MemNetwork: Isolate, Partition, SetLink and Heal
//     cut and slow links, deterministically for the seed (WithSeed).
//
//   - Stop(id) stops a node WITHOUT a controlled shutdown: its transport goes
//     first, so to the other nodes it is a crash (they fail over after
//     SessionTimeout). Its logs are then closed normally, which writes
//     their clean-shutdown markers and checkpoints: unlike a killed process,
//     the restart takes the fast recovery path. Crash the FS first (below)
//     for a restart that must recover from a torn state.
//
//   - Restart(id) opens the node again with the same Config, Dir and FS: it
//     registers a new incarnation and catches up.
//
//   - FS(id) returns the node's wal.FS. By default (no WithDir, no WithFS)
//     each node gets its own wal.MemFS, kept across Stop and Restart. A
//     crash that loses unsynced data is
//
//     lc.FS(id).(*wal.MemFS).Crash(wal.CrashOptions{}); lc.Stop(id); lc.Restart(id)
//
//     (each start of a node works on its own MemFS.Incarnation, which
//     fails every operation after the Crash, so the crashed run cannot
//     write anything more). WithFS supplies other file systems, e.g. a
//     wal.StallFS over a wal.MemFS to stall one node's syncs (its starts
//     get incarnations too), or a wal.FaultFS to fail its writes.
//
// The metadata of a node in memory lives in a store kept across Stop and
// Restart; it is not affected by FS crashes (it is always durable).
type LocalCluster struct {
	n    int
	opts localOptions
	net  *transport.MemNetwork

	mu struct {
		sync.Mutex
		nodes   map[NodeID]*Cluster // the latest Cluster of each node
		running map[NodeID]bool
		fs      map[NodeID]wal.FS
		stores  map[NodeID]*meta.MemStore
		closed  bool
	}
}

// localOptions are what LocalOptions set.
type localOptions struct {
	dir    string
	config []func(*Config)
	fs     func(NodeID) wal.FS
	seed   int64
}

// LocalOption configures a LocalCluster.
type LocalOption func(*localOptions)

// WithDir keeps node i's data in dir/node-i on disk (created if needed)
// instead of in memory.
func WithDir(dir string) LocalOption { return func(o *localOptions) { o.dir = dir } }

// WithConfig adjusts every node's Config before it is opened (on each
// Restart too); f sees cfg.ID and may set anything but ID, Peers, Dir and
// Transport, which the LocalCluster decides. Several WithConfig apply in
// order.
func WithConfig(f func(*Config)) LocalOption {
	return func(o *localOptions) { o.config = append(o.config, f) }
}

// WithFS gives each node its file system for partition logs; f is called
// once per node, at its first start, and the FS is kept across Stop and
// Restart. Default: a wal.MemFS per node without WithDir, the OS with it.
func WithFS(f func(id NodeID) wal.FS) LocalOption { return func(o *localOptions) { o.fs = f } }

// WithSeed seeds the MemNetwork's fault decisions (drop rates). Default 1.
func WithSeed(seed int64) LocalOption { return func(o *localOptions) { o.seed = seed } }

// localReadyTimeout bounds how long NewLocalCluster and Restart wait for
// the nodes to register with the controller.
const localReadyTimeout = 60 * time.Second

// NewLocalCluster starts n nodes, IDs 1 to n, over a new MemNetwork, and
// returns once every node has registered with the controller, so that a
// topic of replication factor n can be created at once. Close it when done.
func NewLocalCluster(n int, opts ...LocalOption) (*LocalCluster, error) {
	if n < 1 {
		return nil, invalid("new local cluster", "%d nodes", n)
	}
	lc := &LocalCluster{n: n, opts: localOptions{seed: 1}}
	for _, o := range opts {
		o(&lc.opts)
	}
	lc.net = transport.NewMemNetwork(lc.opts.seed)
	lc.mu.nodes = map[NodeID]*Cluster{}
	lc.mu.running = map[NodeID]bool{}
	lc.mu.fs = map[NodeID]wal.FS{}
	lc.mu.stores = map[NodeID]*meta.MemStore{}
	for id := NodeID(1); id <= NodeID(n); id++ {
		if err := lc.start(id); err != nil {
			return nil, errors.Join(err, lc.Close())
		}
	}
	since := map[NodeID]uint64{}
	for _, id := range lc.peers() {
		since[id] = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), localReadyTimeout)
	defer cancel()
	if err := waitRegistered(ctx, lc.Node(1), since); err != nil {
		return nil, errors.Join(err, lc.Close())
	}
	return lc, nil
}

// peers returns 1..n.
func (lc *LocalCluster) peers() []NodeID {
	ids := make([]NodeID, lc.n)
	for i := range ids {
		ids[i] = NodeID(i + 1)
	}
	return ids
}

// config builds node id's Config; lc.mu is held.
func (lc *LocalCluster) config(id NodeID) Config {
	cfg := Config{ID: id}
	for _, f := range lc.opts.config {
		f(&cfg)
	}
	cfg.ID, cfg.Peers = id, lc.peers()
	cfg.Transport = lc.net.Endpoint(id)
	cfg.Dir = ""
	if lc.opts.dir != "" {
		cfg.Dir = filepath.Join(lc.opts.dir, fmt.Sprintf("node-%d", id))
	} else {
		if lc.mu.stores[id] == nil {
			lc.mu.stores[id] = meta.NewMemStore()
		}
		cfg.memStore = lc.mu.stores[id]
	}
	if _, ok := lc.mu.fs[id]; !ok {
		switch {
		case lc.opts.fs != nil:
			lc.mu.fs[id] = lc.opts.fs(id)
		case cfg.FS != nil:
			lc.mu.fs[id] = cfg.FS
		case lc.opts.dir == "":
			lc.mu.fs[id] = wal.NewMemFS()
		default:
			lc.mu.fs[id] = nil
		}
	}
	cfg.FS = lc.mu.fs[id]
	if inc, ok := cfg.FS.(interface{ Incarnation() wal.FS }); ok {
		cfg.FS = inc.Incarnation() // what this run still does after a Crash stays out of the next
	}
	return cfg
}

// start opens node id.
func (lc *LocalCluster) start(id NodeID) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.mu.closed {
		return fmt.Errorf("%w: local cluster", ErrClosed)
	}
	if lc.runningLocked(id) {
		return invalid("start", "node %d is running", id)
	}
	c, err := Open(lc.config(id))
	if err != nil {
		return fmt.Errorf("replog: start node %d: %w", id, err)
	}
	lc.mu.nodes[id] = c
	lc.mu.running[id] = true
	return nil
}

// waitRegistered waits until observer's applied metadata shows each of
// ids registered with an incarnation above the one in since (0 when
// absent) and eligible to lead.
func waitRegistered(ctx context.Context, observer *Cluster, since map[NodeID]uint64) error {
	w := observer.meta.Watch()
	defer w.Close()
	ready := func() bool {
		st := observer.meta.State()
		for id, old := range since {
			info, ok := st.Node(id)
			if !ok || info.Incarnation <= old || !info.Eligible() {
				return false
			}
		}
		return true
	}
	for !ready() {
		if _, err := w.Next(ctx); err != nil {
			return fmt.Errorf("replog: waiting for nodes to register: %w", err)
		}
	}
	return nil
}

// Node returns node id's Cluster: the running one, or after Stop the
// stopped one (whose calls return ErrClosed). nil for an id outside 1..n.
func (lc *LocalCluster) Node(id NodeID) *Cluster {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.mu.nodes[id]
}

// Nodes returns the running nodes, by ID.
func (lc *LocalCluster) Nodes() []*Cluster {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []*Cluster
	for _, id := range lc.peers() {
		if lc.runningLocked(id) {
			out = append(out, lc.mu.nodes[id])
		}
	}
	return out
}

// Running reports whether node id is running: started, and neither
// stopped (Stop, CloseNode) nor closed through its own Cluster.Close.
func (lc *LocalCluster) Running(id NodeID) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.runningLocked(id)
}

// runningLocked reports whether node id is running: started, not stopped
// through the LocalCluster, and not closed through its own Cluster.Close.
func (lc *LocalCluster) runningLocked(id NodeID) bool {
	return lc.mu.running[id] && !lc.mu.nodes[id].closed.Load()
}

// Network returns the MemNetwork the nodes talk over, for fault injection.
func (lc *LocalCluster) Network() *transport.MemNetwork { return lc.net }

// FS returns node id's file system for partition logs (a *wal.MemFS by
// default without WithDir; nil means the OS). It is kept across Stop and
// Restart.
func (lc *LocalCluster) FS(id NodeID) wal.FS {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.mu.fs[id]
}

// Stop stops node id without a controlled shutdown, as a crash: its
// transport closes first, then its logs and metadata are closed. The other
// nodes notice after SessionTimeout. Errors: ErrInvalidArgument for a node
// that is not running, and those of closing the node, unless each of them
// is a write that a Crash of its MemFS cut off (wal.ErrCrashed): after a
// Crash, Stop is the end of the crashed process.
func (lc *LocalCluster) Stop(id NodeID) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.runningLocked(id) {
		return invalid("stop", "node %d is not running", id)
	}
	lc.mu.running[id] = false
	if err := lc.mu.nodes[id].kill(); err != nil && !onlyCrashed(err) {
		return err
	}
	return nil
}

// onlyCrashed reports whether every failure in err's tree (of wrapped and
// joined errors) is one on a crashed MemFS.
func onlyCrashed(err error) bool {
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if !onlyCrashed(e) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			return onlyCrashed(inner)
		}
	}
	return errors.Is(err, wal.ErrCrashed)
}

// CloseNode stops node id with a controlled shutdown (Cluster.Close): its
// partitions move to other replicas before it goes. Errors:
// ErrInvalidArgument for a node that is not running.
func (lc *LocalCluster) CloseNode(id NodeID) error {
	lc.mu.Lock()
	if !lc.runningLocked(id) {
		lc.mu.Unlock()
		return invalid("close node", "node %d is not running", id)
	}
	lc.mu.running[id] = false
	c := lc.mu.nodes[id]
	lc.mu.Unlock()
	return c.Close()
}

// Restart opens a stopped node again with the same Config, Dir and FS, and
// waits until it has registered its new incarnation with the controller
// (ctx-free: bounded by a minute). It does not wait for its replicas to
// catch up.
func (lc *LocalCluster) Restart(id NodeID) error {
	if id < 1 || id > NodeID(lc.n) {
		return invalid("restart", "no node %d", id)
	}
	if err := lc.start(id); err != nil {
		return err
	}
	c := lc.Node(id)
	ctx, cancel := context.WithTimeout(context.Background(), localReadyTimeout)
	defer cancel()
	// The node's own registration, known by its nonce, not a registration
	// of an earlier run that its log replays (an incarnation number alone
	// cannot tell them apart when the stopped node never applied its own).
	w := c.meta.Watch()
	defer w.Close()
	for {
		if inc := c.meta.Incarnation(); inc != 0 {
			if info, ok := c.meta.State().Node(uint64(id)); ok && info.Incarnation == inc && info.Eligible() {
				return nil
			}
		}
		if _, err := w.Next(ctx); err != nil {
			return fmt.Errorf("replog: waiting for node %d to register: %w", id, err)
		}
	}
}

// Close stops every running node (without controlled shutdown: the whole
// cluster goes) and the network, and waits for their goroutines.
// Idempotent.
func (lc *LocalCluster) Close() error {
	lc.mu.Lock()
	if lc.mu.closed {
		lc.mu.Unlock()
		return nil
	}
	lc.mu.closed = true
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(lc.mu.running)) {
		if lc.mu.running[id] {
			lc.mu.running[id] = false
			errs = append(errs, lc.mu.nodes[id].kill())
		}
	}
	lc.mu.Unlock()
	if err := lc.net.Close(); err != nil && !errors.Is(err, transport.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
