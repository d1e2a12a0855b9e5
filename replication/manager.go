package replication

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/wal"
)

// ReadOptions bound a Read.
type ReadOptions struct {
	// MaxBytes bounds the encoded batches read (at least one record is
	// returned when one is there). Default 1 MiB.
	MaxBytes int
	// MaxRecords bounds the records returned. 0: no bound.
	MaxRecords int
	// MaxWait, when positive, makes Read wait, without polling, up to
	// this long for a first committed record at offset.
	MaxWait time.Duration
}

// ReadResult is what Read returns.
type ReadResult struct {
	// Records are committed records from the asked offset on, in order.
	// The caller owns them.
	Records []log.Record
	// HighWatermark and LogStartOffset are as the serving replica knew
	// them.
	HighWatermark, LogStartOffset int64
}

// Manager runs this node's partition replicas. All methods are safe for
// concurrent use.
//
// Goroutines, all owned by the Manager and stopped and waited for by
// Close: the watch loop (metadata events), the tick loop (the one timer:
// retransmissions, ISR changes, retention), the sweep (once per start, see
// sweep.go), one sender per peer node, and short-lived ones started on
// demand (a replica's worker while it has work, an AlterISR or
// SetUnhealthy request, a forwarded read).
//
// Locks, in the order they may be taken: dirMu, then a producer's or a
// replica's mu (never both), then Manager.mu, then a peer's mu; spawnMu
// alone.
type Manager struct {
	cfg    Config
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
	start  time.Time

	watcher    *meta.Watcher
	journal    *wal.Journal  // with Config.Journal; closed after the replicas
	registered chan struct{} // closed once this node's incarnation is known
	pepoch     atomic.Int32  // producer epoch: the incarnation, 15 bits
	closed     atomic.Bool
	draining   atomic.Bool
	unhealthy  atomic.Bool
	// reqSeq numbers forwarded appends and reads. It starts at random:
	// answers to a previous run's requests (a restarted node's peers and
	// transports still deliver them) must not match this run's.
	reqSeq atomic.Uint64

	// stats count leader and follower rounds, for benchmarks and tests,
	// and where an AcksAll append's time goes: queued for the leader's
	// round (queueNanos), the round's write (leaderNanos), then waiting
	// for the high watermark (hwNanos, over hwBatches); on a follower, a
	// push waiting for the append that takes it (pushWaitNanos, over
	// followerPushes).
	stats struct {
		leaderRounds, leaderBatches, leaderNanos      atomic.Int64
		followerRounds, followerPushes, followerNanos atomic.Int64
		queueNanos, hwNanos, hwBatches, pushWaitNanos atomic.Int64
	}

	// alterISRHook, when set (tests), replaces Meta.AlterISR.
	alterISRHook atomic.Pointer[alterISRFunc]
	// topicDeletedHook, when set (tests), runs in topicDeleted once the
	// topic's producers are taken out of mu.producers.
	topicDeletedHook atomic.Pointer[func()]

	// catchUpBufs keeps up to keptCatchUpBufs free buffers that catch-up
	// pushes are read into (catchUpReadBytes of capacity each): a push
	// copies its batches into the outgoing message, so a buffer is free
	// again once pushed. (A sync.Pool loses them at every GC, which under
	// load is often: each miss zeroes a fresh MiB.)
	catchUpBufs chan *[]byte

	spawnMu sync.Mutex
	closing bool // under spawnMu: no more goroutines

	// dirMu is held while a replica directory is opened into a replica
	// (reconcileTopic), while a replica is dropped (dropReplica), and
	// while the sweep removes an orphaned directory: the sweep never
	// removes a directory a replica is opening or has open.
	dirMu sync.Mutex

	mu struct {
		sync.RWMutex
		replicas  map[pkey]*replica
		producers map[pkey]*producer
		// dying: producers of deleted topics whose last calls wait for
		// the answer to their one attempt (producer.topicDeleted); ticked
		// until idle.
		dying   []*producer
		peers   map[uint64]*peer
		calls   map[uint64]*call
		reads   map[uint64]*readCall
		orphans map[pkey][]orphan
		changed chan struct{} // closed and replaced on every change waiters may care about
	}
}

// orphan is a batch for a partition this node has no replica of yet (its
// metadata is behind the sender's).
type orphan struct {
	req *appendReq
	at  int64
}

// Open starts a Manager: it watches cfg.Meta and opens a replica for
// every partition assigned to this node.
func Open(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	m := &Manager{cfg: cfg, done: make(chan struct{}), start: time.Now(), registered: make(chan struct{}),
		catchUpBufs: make(chan *[]byte, keptCatchUpBufs)}
	m.reqSeq.Store(rand.Uint64() >> 1)
	if cfg.Journal {
		j, err := m.openJournal()
		if err != nil {
			return nil, fmt.Errorf("replication: open the journal: %w", err)
		}
		m.journal = j
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.mu.replicas = map[pkey]*replica{}
	m.mu.producers = map[pkey]*producer{}
	m.mu.peers = map[uint64]*peer{}
	m.mu.calls = map[uint64]*call{}
	m.mu.reads = map[uint64]*readCall{}
	m.mu.orphans = map[pkey][]orphan{}
	m.mu.changed = make(chan struct{})
	m.watcher = cfg.Meta.Watch()
	m.reconcileAll(cfg.Meta.State())
	m.checkRegistered()
	m.wg.Add(3)
	go m.watchLoop()
	go m.tickLoop()
	go m.sweepLoop()
	return m, nil
}

// spawn runs fn on a goroutine the Manager waits for, unless it is
// closing.
func (m *Manager) spawn(fn func()) bool {
	m.spawnMu.Lock()
	defer m.spawnMu.Unlock()
	if m.closing {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
	return true
}

// mono is the Manager's monotonic time in nanoseconds.
func (m *Manager) mono() int64 { return int64(time.Since(m.start)) }

// alterISRFunc is the signature of meta.Node.AlterISR.
type alterISRFunc func(ctx context.Context, topic string, topicID uint64, partition int32, leaderEpoch, partitionEpoch int32, isr []uint64) (meta.Partition, error)

// alterISRTimeout bounds one AlterISR request.
func (m *Manager) alterISRTimeout() time.Duration { return 10*m.cfg.tickInterval() + time.Second }

func (m *Manager) retryDelay() int64 { return int64(2 * m.cfg.tickInterval()) }

// resendAfter is how long an attempt may go unanswered before it is sent
// again: four ticks, doubling per attempt, at most twice the lag time (an
// AcksAll answer may legitimately wait that long for an ISR shrink).
func (m *Manager) resendAfter(attempt uint64) int64 {
	d := 4 * m.cfg.tickInterval() << min(attempt-1, 4)
	return int64(min(d, max(4*m.cfg.tickInterval(), 2*m.cfg.ReplicaLagTime)))
}

func (m *Manager) producerEpoch() int16 { return int16(m.pepoch.Load()) }

func (m *Manager) checkRegistered() {
	select {
	case <-m.registered:
		return
	default:
	}
	if inc := m.cfg.Meta.Incarnation(); inc != 0 {
		m.pepoch.Store(int32(inc & 0x7fff))
		close(m.registered)
		// Leaderships skipped while unregistered are taken up now.
		m.reconcileAll(m.cfg.Meta.State())
	}
}

func (m *Manager) isRegistered() bool {
	select {
	case <-m.registered:
		return true
	default:
		return false
	}
}

func (m *Manager) replica(key pkey) *replica {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.replicas[key]
}

func (m *Manager) peer(id uint64) *peer {
	m.mu.RLock()
	p := m.mu.peers[id]
	m.mu.RUnlock()
	if p != nil {
		return p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p = m.mu.peers[id]; p == nil {
		p = &peer{id: id, m: m, kick: make(chan struct{}, 1)}
		m.spawn(p.run)
		m.mu.peers[id] = p
	}
	return p
}

func (m *Manager) trackCall(c *call) {
	m.mu.Lock()
	m.mu.calls[c.reqID] = c
	m.mu.Unlock()
}

func (m *Manager) untrackCall(c *call) {
	m.mu.Lock()
	delete(m.mu.calls, c.reqID)
	m.mu.Unlock()
}

// orphan holds req until this node opens the partition's replica.
func (m *Manager) orphan(key pkey, req *appendReq) {
	m.mu.Lock()
	if len(m.mu.orphans[key]) < maxParked {
		m.mu.orphans[key] = append(m.mu.orphans[key], orphan{req, m.mono()})
		req = nil
	}
	m.mu.Unlock()
	if req != nil {
		answers{{req: req, code: codeRetry}}.deliver(m)
	}
}

// changedCh returns a channel closed at the next change: a metadata event
// applied, or a producer emptied.
func (m *Manager) changedCh() <-chan struct{} {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.changed
}

func (m *Manager) notifyChanged() {
	m.mu.Lock()
	close(m.mu.changed)
	m.mu.changed = make(chan struct{})
	m.mu.Unlock()
}

// reportUnhealthy tells the controller, once, that this node's storage
// failed, so that its leaderships move.
func (m *Manager) reportUnhealthy() {
	if !m.unhealthy.CompareAndSwap(false, true) {
		return
	}
	m.spawn(func() {
		m.retryMeta(5*time.Second, m.cfg.Logger.Warn, "replication: cannot report storage failure yet; retrying",
			func(ctx context.Context) error { return m.cfg.Meta.SetUnhealthy(ctx, true) })
	})
}

// retryMeta calls call, each time with a ctx bounded by timeout, until it
// succeeds (true) or the Manager or the metadata node closes (false).
// Between failed attempts it waits a tick, since some errors come at once
// (the node has not registered yet, at start), and it logs the first
// failure with msg.
func (m *Manager) retryMeta(timeout time.Duration, logf func(msg string, args ...any), msg string, call func(context.Context) error) bool {
	logged := false
	for {
		ctx, cancel := context.WithTimeout(m.ctx, timeout)
		err := call(ctx)
		cancel()
		if err == nil {
			return true
		}
		if m.ctx.Err() != nil || errors.Is(err, meta.ErrClosed) {
			return false
		}
		if !logged {
			logf(msg, "err", err)
			logged = true
		}
		t := time.NewTimer(m.cfg.tickInterval())
		select {
		case <-m.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// Append appends records to a partition as one batch, through its leader,
// and returns the offsets of the first and last record once acks allows
// (AcksNone: at once, with -1, -1). On a node that does not lead the
// partition the batch is forwarded to the leader the local metadata
// names. Elections, unknown leaders and lost messages are ridden out
// within ctx; retries never write a batch twice. Records are encoded
// before Append returns: the caller may reuse them. Errors:
// ErrInvalidArgument, ErrRecordTooLarge, meta.ErrUnknownTopic and
// meta.ErrUnknownPartition (the batch was not written: a topic
// CreateTopic returned for is found on every node), ErrNotEnoughReplicas
// (AcksAll: the ISR stayed below MinInSyncReplicas for ReplicaLagTime
// since the leader first answered so; a ctx that ends during that wait
// gives an error matching both),
// wal.ErrStorageStalled (this node's storage stalled as leader, or the
// leader's with no other eligible ISR member to take over), ErrNotLeader
// (the topic was deleted while the batch was in flight), ErrClosed, ctx's
// error. ErrInvalidArgument, ErrRecordTooLarge, meta.ErrUnknownTopic and
// meta.ErrUnknownPartition say the batch was not written; after any other
// error it may or may not have been.
//
// The appends of one node to one partition are sent in a window: a call
// goes to the leader only while fewer than maxInFlight (64) calls
// submitted before it are unanswered (see dedup.go for why). So a call
// that waits long, such as an AcksAll append waiting out a short ISR,
// holds the calls 64 places behind it, AcksLeader ones too, for as long;
// and an AcksNone append beyond the window is dropped, as it is when the
// leader cannot be reached. Within the window, at most 4 AcksLeader and
// AcksAll calls are in flight; those submitted meanwhile go as one batch
// when one is answered (see producer.pickLocked).
func (m *Manager) Append(ctx context.Context, topic string, partition int32, records []log.Record, acks Acks) (base, last int64, err error) {
	if m.closed.Load() || m.draining.Load() {
		return 0, 0, ErrClosed
	}
	if acks != AcksNone && acks != AcksLeader && acks != AcksAll {
		return 0, 0, fmt.Errorf("%w: acks %d", ErrInvalidArgument, acks)
	}
	if len(records) == 0 {
		return 0, 0, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		// Checked before anything else: the select below picks at random
		// among ready cases, and an append whose ctx ended before the
		// call must write nothing.
		return 0, 0, fmt.Errorf("replication: append: %w", err)
	}
	t, err := m.topic(ctx, topic, partition)
	if err != nil {
		return 0, 0, err
	}
	if err := m.awaitRegistered(ctx); err != nil {
		return 0, 0, err
	}
	now := m.cfg.Clock()
	size, err := log.EncodedSize(records, now)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if size > m.cfg.MaxBatchBytes {
		return 0, 0, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrRecordTooLarge, size, m.cfg.MaxBatchBytes)
	}
	h := log.BatchHeader{ProducerID: int64(m.cfg.ID), ProducerEpoch: m.producerEpoch()}
	buf, err := log.EncodeBatch(make([]byte, 0, size), h, records, now)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	base, last, err = m.submit(ctx, t, partition, buf, int32(len(records)), acks)
	if errors.Is(err, meta.ErrUnknownTopic) {
		// Not written. This node's metadata may lag behind a deletion and
		// a new topic of the same name, which a CreateTopic that returned
		// makes usable at once on every node: ask the group, and append to
		// the new topic if there is one.
		if t2, lerr := m.cfg.Meta.LinearizableTopic(ctx, topic); lerr == nil && t2.ID != t.ID && int(partition) < len(t2.Partitions) {
			return m.submit(ctx, t2, partition, slices.Clone(buf), int32(len(records)), acks)
		}
	}
	return base, last, err
}

// submit hands an encoded batch to the partition's producer and waits for
// its answer (AcksNone: returns at once).
func (m *Manager) submit(ctx context.Context, t *meta.Topic, partition int32, buf []byte, count int32, acks Acks) (base, last int64, err error) {
	p := m.producerFor(t, partition)
	c := &call{p: p, batch: buf, count: count, acks: acks, reqID: m.reqSeq.Add(1), done: make(chan struct{})}
	if err := p.submit(c); err != nil {
		return 0, 0, err
	}
	if acks == AcksNone {
		p.abandon(c)
		return -1, -1, nil
	}
	// Not m.done: Close ends every call (producer.fail), and a select on a
	// channel every Append shares costs each of them its lock twice.
	select {
	case <-c.done:
		return c.base, c.last, c.err
	case <-ctx.Done():
		if p.abandon(c) {
			return 0, 0, fmt.Errorf("replication: append to %s/%d: %w (the leader had found the ISR short): %w",
				t.Name, partition, ctx.Err(), ErrNotEnoughReplicas)
		}
		return 0, 0, fmt.Errorf("replication: append to %s/%d: %w", t.Name, partition, ctx.Err())
	}
}

// awaitRegistered waits until this node's incarnation is known (at once
// once it is: a closed channel's receive needs no lock, where a select
// of three cases locks all three, m.done being shared by every Append).
func (m *Manager) awaitRegistered(ctx context.Context) error {
	select {
	case <-m.registered:
		return nil
	default:
	}
	select {
	case <-m.registered:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replication: append: %w", ctx.Err())
	case <-m.done:
		return ErrClosed
	}
}

// topic finds a topic in the local metadata, or, if it is missing there,
// with a lease-checked read (which confirms with the controller before
// answering ErrUnknownTopic), and checks the partition.
func (m *Manager) topic(ctx context.Context, name string, partition int32) (*meta.Topic, error) {
	t, ok := m.cfg.Meta.State().Topic(name)
	if !ok {
		var err error
		if t, err = m.cfg.Meta.Topic(ctx, name); err != nil {
			return nil, fmt.Errorf("replication: %s: %w", name, err)
		}
	}
	if partition >= 0 && int(partition) >= len(t.Partitions) && ok {
		// The local metadata may hold an older topic of the same name
		// (deleted and created again with more partitions): ask the group.
		if t2, err := m.cfg.Meta.LinearizableTopic(ctx, name); err == nil {
			t = t2
		}
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, fmt.Errorf("replication: %s/%d: %w", name, partition, meta.ErrUnknownPartition)
	}
	return t, nil
}

func (m *Manager) producerFor(t *meta.Topic, partition int32) *producer {
	key := pkey{t.ID, partition}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.mu.producers[key]
	if p == nil {
		p = &producer{m: m, key: key, topic: t.Name}
		if m.closed.Load() {
			// Close fails the producers it finds, maybe already did:
			// one made now must fail its calls itself.
			p.mu.dead = ErrClosed
			return p
		}
		part := t.Partitions[partition]
		p.mu.leader, p.mu.epoch, p.mu.pepoch = part.Leader, part.LeaderEpoch, part.PartitionEpoch
		m.mu.producers[key] = p
	}
	return p
}

// PartitionState returns the high watermark and log start offset of this
// node's replica of a partition; ok is false if it holds none.
func (m *Manager) PartitionState(topic string, partition int32) (hw, logStart int64, ok bool) {
	t, found := m.cfg.Meta.State().Topic(topic)
	if !found {
		return 0, 0, false
	}
	r := m.replica(pkey{t.ID, partition})
	if r == nil {
		return 0, 0, false
	}
	hw, logStart = r.state()
	return hw, logStart, true
}

// Shutdown is a controlled shutdown: it drains this node in meta so that
// its leaderships move to other ISR members, and waits, bounded by ctx,
// until it leads nothing and the appends in flight are answered. Appends
// that start after it fail with ErrClosed. Call it before Close.
func (m *Manager) Shutdown(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.draining.Store(true)
	led := m.ledReplicas()
	m.awaitFollowersKnowHW(ctx, led)
	lagging := make(map[*replica][]uint64, len(led))
	for _, r := range led {
		r.mu.Lock()
		if r.mu.role == roleLeader {
			lagging[r] = r.laggingLocked(m.mono())
		}
		r.mu.Unlock()
	}
	if err := m.cfg.Meta.Drain(ctx); err != nil {
		return fmt.Errorf("replication: shutdown: %w", err)
	}
	for {
		ch := m.changedCh()
		if m.leadsNothing() && m.noCalls() && m.handedOver(led, lagging) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replication: shutdown: %w", ctx.Err())
		case <-m.done:
			return ErrClosed
		}
	}
}

// awaitFollowersKnowHW waits, at most half of ReplicaLagTime (and within
// ctx), until the matched ISR followers of every replica in led have
// acknowledged its high watermark. A follower that takes over the
// leadership then knows every record committed: without this, a new
// leader whose ISR shrinks below MinInSyncReplicas as its peers leave too
// could not commit (so serve) records the old leader had committed.
func (m *Manager) awaitFollowersKnowHW(ctx context.Context, led []*replica) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ReplicaLagTime/2)
	defer cancel()
	for {
		ch := m.changedCh()
		known := true
		for _, r := range led {
			r.mu.Lock()
			known = r.followersKnowHWLocked()
			r.mu.Unlock()
			if !known {
				break
			}
		}
		if known {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-m.done:
			return
		}
	}
}

func (m *Manager) leadsNothing() bool {
	st := m.cfg.Meta.State()
	for _, t := range st.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == m.cfg.ID && slices.Contains(p.ISR, m.cfg.ID) && len(p.ISR) > 1 {
				return false
			}
		}
	}
	return true
}

// ledReplicas returns the replicas this node leads. (A replica's mu comes
// before Manager.mu in the lock order: a replica's worker takes Manager.mu
// under its own to reach a peer. So the replicas are listed first.)
func (m *Manager) ledReplicas() []*replica {
	m.mu.RLock()
	all := make([]*replica, 0, len(m.mu.replicas))
	for _, r := range m.mu.replicas {
		all = append(all, r)
	}
	m.mu.RUnlock()
	var out []*replica
	for _, r := range all {
		r.mu.Lock()
		if r.mu.role == roleLeader {
			out = append(out, r)
		}
		r.mu.Unlock()
	}
	return out
}

// handedOver reports whether the new leader of each partition in led (as
// this node's metadata names it) has pushed to this replica in its epoch.
// Drain returns once the change is applied here, not on the other nodes:
// without this wait, a node that is also the metadata leader could stop
// before the new leaders learn of the change, and appends would wait for
// a new metadata leader (or the session timeout) instead.
//
// A new leader that lagged when the shutdown began (lagging: the ISR
// members each replica would have shrunk out; the ISR keeps some at
// MinInSyncReplicas) is not waited for: it may not reach this node at
// all.
func (m *Manager) handedOver(led []*replica, lagging map[*replica][]uint64) bool {
	st := m.cfg.Meta.State()
	for _, r := range led {
		p, ok := st.Partition(r.topic, r.key.partition)
		if !ok || p.Leader == 0 || p.Leader == m.cfg.ID || slices.Contains(lagging[r], p.Leader) {
			continue // deleted, offline, still ours (no one else in the ISR), or not reaching us
		}
		r.mu.Lock()
		heard := r.mu.heard >= p.LeaderEpoch || r.mu.closed || r.mu.failed != nil
		r.mu.Unlock()
		if !heard {
			return false
		}
	}
	return true
}

// producersLocked lists every producer: those of live topics and the
// dying ones. Called with mu held (read or write); the list is the
// caller's, to use once mu is released (a producer's lock comes first).
func (m *Manager) producersLocked() []*producer {
	ps := make([]*producer, 0, len(m.mu.producers)+len(m.mu.dying))
	for _, p := range m.mu.producers {
		ps = append(ps, p)
	}
	return append(ps, m.mu.dying...)
}

func (m *Manager) noCalls() bool {
	m.mu.RLock()
	ps := m.producersLocked()
	m.mu.RUnlock()
	for _, p := range ps {
		if !p.idle() {
			return false
		}
	}
	return true
}

// Close stops every replica and goroutine of the Manager and closes the
// logs. Calls in flight return ErrClosed. A second Close returns nil.
func (m *Manager) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.spawnMu.Lock()
	m.closing = true
	m.spawnMu.Unlock()
	m.cancel()
	close(m.done)
	// Appends end now, not once the goroutines below finished their IO
	// (a stalled one may take SyncTimeout): every producer fails its
	// calls, and producerFor makes only dead ones from here on.
	m.mu.Lock()
	producers := m.producersLocked()
	m.mu.dying = nil
	m.mu.Unlock()
	for _, p := range producers {
		p.fail(ErrClosed)
	}
	m.watcher.Close()
	m.wg.Wait()

	m.mu.Lock()
	replicas := make([]*replica, 0, len(m.mu.replicas))
	for _, r := range m.mu.replicas {
		replicas = append(replicas, r)
	}
	m.mu.orphans = map[pkey][]orphan{}
	m.mu.Unlock()
	var errs []error
	for _, r := range replicas {
		if err := r.close(false); err != nil {
			errs = append(errs, err)
		}
	}
	if m.journal != nil {
		if err := m.journal.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openJournal opens the node's journal. A journal found corrupt is moved
// aside (as a corrupt replica log is) and a new one started: the replica
// logs then open without replaying it, each keeping the prefix its own
// files hold, so a replica may have lost records it had acknowledged
// (its unsynced tail). That is safe as it is after a crash of a SyncNever
// node: this node's registration takes it out of every ISR, and it leads
// nothing until a leader has added it back, caught up.
func (m *Manager) openJournal() (*wal.Journal, error) {
	dir := filepath.Join(m.cfg.Dir, journalDir)
	opts := wal.JournalOptions{FS: m.cfg.FS, Dir: dir, SyncTimeout: m.cfg.SyncTimeout, Logger: m.cfg.Logger,
		SegmentSize: m.cfg.journalSegmentSize}
	j, err := wal.OpenJournal(opts)
	if !errors.Is(err, wal.ErrCorrupt) {
		return j, err
	}
	q, qerr := m.quarantine(dir)
	if qerr != nil {
		return nil, fmt.Errorf("%w (moving it aside: %w)", err, qerr)
	}
	m.cfg.Logger.Error("replication: the node's journal is corrupt: moved aside, a new one started; replicas may have lost their unsynced tails and catch up from their leaders",
		"moved_to", q, "err", err)
	return wal.OpenJournal(opts)
}

// journalDir is the directory of the node's journal under Config.Dir
// (replica directories always hold dashes: no topic's can be it).
const journalDir = "journal"
