package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/replog/replog/internal/mux"
	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcluster runs nodes of meta + replication over one MemNetwork, each
// node's logs in its own FS (kept across restarts).
type tcluster struct {
	t     testing.TB
	net   *transport.MemNetwork
	ids   []uint64
	nodes map[uint64]*tnode
	mem   map[uint64]*meta.MemStore
	fs    map[uint64]wal.FS
	dir   string
	cfg   func(id uint64, c *Config)
}

type tnode struct {
	ep   *transport.MemEndpoint
	meta *meta.Node
	rep  *Manager
}

func newTCluster(t testing.TB, n int, cfg func(id uint64, c *Config)) *tcluster {
	c := &tcluster{t: t, net: transport.NewMemNetwork(1), nodes: map[uint64]*tnode{},
		mem: map[uint64]*meta.MemStore{}, fs: map[uint64]wal.FS{}, cfg: cfg}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint64(i))
	}
	for _, id := range c.ids {
		c.mem[id] = meta.NewMemStore()
		c.fs[id] = wal.NewMemFS()
		c.start(id)
	}
	t.Cleanup(c.close)
	return c
}

// newStallCluster starts 3 nodes whose file systems can be stalled, and
// returns their StallFSes by node id (every one released when the test
// ends: a failed test must not leave syncs blocked). more, if not nil,
// configures each node further.
func newStallCluster(t *testing.T, more func(id uint64, cfg *Config)) (*tcluster, map[uint64]*wal.StallFS) {
	stalls := map[uint64]*wal.StallFS{}
	c := newTCluster(t, 3, func(id uint64, cfg *Config) {
		s := wal.NewStallFS(cfg.FS)
		stalls[id] = s
		cfg.FS = s
		if more != nil {
			more(id, cfg)
		}
	})
	t.Cleanup(func() {
		for _, s := range stalls {
			s.Release()
		}
	})
	return c, stalls
}

func (c *tcluster) start(id uint64) *tnode {
	c.t.Helper()
	ep := c.net.Endpoint(id)
	mx := mux.New(ep)
	mn, err := meta.Open(meta.Config{ID: id, Peers: c.ids, MemStore: c.mem[id],
		Raft: mx.Sender(mux.TagRaft), Meta: mx.Sender(mux.TagMeta)})
	if err != nil {
		c.t.Fatalf("meta open %d: %v", id, err)
	}
	fsys := c.fs[id]
	if m, ok := fsys.(*wal.MemFS); ok {
		fsys = m.Incarnation()
	}
	cfg := Config{ID: id, Meta: mn, Replication: mx.Sender(mux.TagReplication), Forward: mx.Sender(mux.TagForward),
		FS: fsys, Dir: "/data", SyncTimeout: time.Second}
	if c.dir != "" {
		cfg.Dir = fmt.Sprintf("%s/%d", c.dir, id)
	}
	if c.cfg != nil {
		c.cfg(id, &cfg)
	}
	rm, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("replication open %d: %v", id, err)
	}
	for _, err := range []error{
		mx.Handle(mux.TagRaft, mn.HandleRaft), mx.Handle(mux.TagMeta, mn.HandleMeta),
		mx.Handle(mux.TagReplication, rm.HandleReplication), mx.Handle(mux.TagForward, rm.HandleForward),
		mx.Start(),
	} {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	n := &tnode{ep: ep, meta: mn, rep: rm}
	c.nodes[id] = n
	return n
}

func (c *tcluster) stop(id uint64) {
	c.t.Helper()
	n := c.nodes[id]
	delete(c.nodes, id)
	if err := n.ep.Close(); err != nil {
		c.t.Errorf("close endpoint %d: %v", id, err)
	}
	if err := n.rep.Close(); err != nil && !errors.Is(err, wal.ErrStorageStalled) {
		c.t.Errorf("close replication %d: %v", id, err)
	}
	if err := n.meta.Close(); err != nil {
		c.t.Errorf("close meta %d: %v", id, err)
	}
}

func (c *tcluster) close() {
	for _, id := range c.ids {
		if c.nodes[id] != nil {
			c.stop(id)
		}
	}
	if err := c.net.Close(); err != nil {
		c.t.Errorf("close network: %v", err)
	}
}

// waitFor advances time in small steps until cond holds, at most limit.
// Under synctest the steps are the bubble's fake clock.
func (c *tcluster) waitFor(what string, limit time.Duration, cond func() bool) {
	c.t.Helper()
	c.waitForOrDump(what, limit, cond, nil)
}

// waitForOrDump is waitFor that, if cond does not come to hold, also
// calls dump (if not nil) to log what the test needs to tell why.
func (c *tcluster) waitForOrDump(what string, limit time.Duration, cond func() bool, dump func()) {
	c.t.Helper()
	for waited := time.Duration(0); waited < limit; waited += 10 * time.Millisecond {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !cond() {
		for _, id := range c.ids {
			if n := c.nodes[id]; n != nil {
				n.rep.mu.RLock()
				for k, r := range n.rep.mu.replicas {
					r.mu.Lock()
					c.t.Logf("node %d %v: role %d epoch %d leader %d end %d hw %d isr %v followers %s", id, k, r.mu.role, r.mu.epoch,
						r.mu.leader, r.log.LogEndOffset(), r.log.HighWatermark(), r.mu.part.ISR, fmtFollowers(r.mu.followers))
					r.mu.Unlock()
				}
				n.rep.mu.RUnlock()
			}
		}
		if dump != nil {
			dump()
		}
		c.t.Fatalf("%s: not within %v", what, limit)
	}
}

// createTopic creates a topic once the cluster can, and waits until every
// running node has its replicas open and knows a leader.
func (c *tcluster) createTopic(name string, cfg meta.TopicConfig) *meta.Topic {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var t *meta.Topic
	c.waitFor("topic created", 60*time.Second, func() bool {
		var err error
		for _, n := range c.nodes {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			t, err = n.meta.CreateTopic(cctx, name, cfg)
			ccancel()
			return err == nil
		}
		return false
	})
	c.waitFor("replicas open", 30*time.Second, func() bool {
		for _, n := range c.nodes {
			for p := range t.Partitions {
				part, ok := n.meta.State().Partition(name, int32(p))
				if !ok || part.Leader == 0 {
					return false
				}
				if _, _, ok := n.rep.PartitionState(name, int32(p)); !ok && slices.Contains(part.Replicas, n.meta.ID()) {
					return false
				}
			}
		}
		return true
	})
	return t
}

// leader is the partition's leader as some running node's metadata says.
func (c *tcluster) leader(topic string, partition int32) uint64 {
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			if p, ok := n.meta.State().Partition(topic, partition); ok {
				return p.Leader
			}
		}
	}
	return 0
}

// waitNewLeader waits until the running nodes' metadata names a leader of
// t/0 other than old, and returns it.
func (c *tcluster) waitNewLeader(old uint64) uint64 {
	c.t.Helper()
	c.waitFor("a new leader", 60*time.Second, func() bool {
		l := c.leader("t", 0)
		return l != 0 && l != old
	})
	return c.leader("t", 0)
}

// logBytes returns node id's replica's raw batches below end; ok is false
// while the node has no replica.
func (c *tcluster) logBytes(id uint64, topic string, partition int32) (b []byte, end int64, ok bool) {
	c.t.Helper()
	n := c.nodes[id]
	t, ok := n.meta.State().Topic(topic)
	if !ok {
		return nil, 0, false
	}
	r := n.rep.replica(pkey{t.ID, partition})
	if r == nil {
		return nil, 0, false
	}
	end = r.log.LogEndOffset()
	b, err := r.log.ReadBatches(nil, r.log.LogStartOffset(), end, 1<<30)
	if err != nil {
		c.t.Fatalf("node %d: read log: %v", id, err)
	}
	return b, end, true
}

// converged waits until every running node's replica holds the same bytes
// with the high watermark at the end, and returns the decoded records.
func (c *tcluster) converged(topic string, partition int32) []log.Record {
	c.t.Helper()
	var ref []byte
	c.waitForOrDump("replicas converge", 60*time.Second, func() bool {
		ref = nil
		first := true
		for _, id := range c.ids {
			n := c.nodes[id]
			if n == nil {
				continue
			}
			b, end, ok := c.logBytes(id, topic, partition)
			if !ok {
				return false
			}
			if hw, _, _ := n.rep.PartitionState(topic, partition); hw != end {
				return false
			}
			if first {
				ref, first = b, false
			} else if !bytes.Equal(ref, b) {
				return false
			}
		}
		return true
	}, func() { c.dumpReplicas(topic, partition) })
	var recs []log.Record
	for rest := ref; len(rest) > 0; {
		b, next, err := log.SplitBatch(rest)
		if err != nil {
			c.t.Fatal(err)
		}
		recs, err = b.Records(recs)
		if err != nil {
			c.t.Fatal(err)
		}
		rest = next
	}
	return recs
}

func rec(s string) []log.Record { return []log.Record{{Value: []byte(s)}} }

func fmtFollowers(fs map[uint64]*fstate) string {
	var b bytes.Buffer
	for id, f := range fs {
		fmt.Fprintf(&b, "[%d: matched %v gen %d sent %d acked %d infl %d trunc %v] ", id, f.matched, f.gen, f.sentEnd, f.st.logEnd, len(f.inflight), f.truncate)
	}
	return b.String()
}

// topicT creates topic "t" with one partition on three replicas (min ISR 2)
// and returns its leader and one of its followers.
func (c *tcluster) topicT() (leader, follower uint64) {
	c.t.Helper()
	c.createTopic("t", meta.TopicConfig{Partitions: 1, ReplicationFactor: 3, MinInSyncReplicas: 2})
	leader = c.leader("t", 0)
	return leader, c.other(leader)
}

// deleteTopic deletes the topic (of ID id, one partition) and waits until
// no node holds files of its replica any more.
func (c *tcluster) deleteTopic(ctx context.Context, name string, id uint64) {
	c.t.Helper()
	if err := c.nodes[1].meta.DeleteTopic(ctx, name); err != nil {
		c.t.Fatal(err)
	}
	dir := replicaDir("/data", name, id, 0)
	c.waitFor("replica files removed", 10*time.Second, func() bool {
		for _, id := range c.ids {
			if names, _ := c.fs[id].ReadDir(dir); len(names) > 0 {
				return false
			}
		}
		return true
	})
}

// dumpReplicas logs, for every running node, its replica of the partition:
// its state (role, epoch, agreement, log start/end, high watermark as the
// log and as PartitionState give it, leader-epoch cache) and every batch
// of its log (base offset, record count, leader epoch, producer id, epoch
// and sequence, first value, checksum), each batch marked where its bytes
// differ from the first node's batch at the same offset ("DIFF" with the
// byte ranges that differ).
func (c *tcluster) dumpReplicas(topic string, partition int32) {
	c.t.Helper()
	ref := map[int64]log.Batch{}
	first := true
	for _, id := range c.ids {
		n := c.nodes[id]
		if n == nil {
			continue
		}
		t, ok := n.meta.State().Topic(topic)
		if !ok {
			c.t.Logf("node %d: no topic %q", id, topic)
			continue
		}
		r := n.rep.replica(pkey{t.ID, partition})
		if r == nil {
			c.t.Logf("node %d: no replica", id)
			continue
		}
		r.mu.Lock()
		role, epoch, leader, agreed, failed := r.mu.role, r.mu.epoch, r.mu.leader, r.mu.agreed, r.mu.failed
		r.mu.Unlock()
		hw, _, _ := n.rep.PartitionState(topic, partition)
		c.t.Logf("node %d: role %d epoch %d leader %d agreed %d failed %v start %d end %d next %d hw %d (PartitionState %d) latest epoch %d epochs %v",
			id, role, epoch, leader, agreed, failed, r.log.LogStartOffset(), r.log.LogEndOffset(), r.log.NextOffset(),
			r.log.HighWatermark(), hw, r.log.LatestEpoch(), r.log.Epochs())
		raw, err := r.log.ReadBatches(nil, r.log.LogStartOffset(), r.log.LogEndOffset(), 1<<30)
		if err != nil {
			c.t.Logf("node %d: read log: %v", id, err)
			continue
		}
		for i, rest := 0, raw; len(rest) > 0; i++ {
			b, next, err := log.SplitBatch(rest)
			if err != nil {
				c.t.Logf("node %d: split at byte %d: %v", id, len(raw)-len(rest), err)
				break
			}
			rest = next
			if i >= 400 {
				c.t.Logf("node %d: ... (more batches)", id)
				break
			}
			val := "?"
			if recs, err := b.Records(nil); err != nil {
				val = "records: " + err.Error()
			} else if len(recs) > 0 {
				val = string(recs[0].Value)
			}
			mark := ""
			if first {
				ref[b.BaseOffset()] = b
			} else if o, ok := ref[b.BaseOffset()]; !ok {
				mark = " DIFF (no batch there on the first node)"
			} else if !bytes.Equal(o, b) {
				mark = " DIFF " + diffRanges(o, b)
			}
			c.t.Logf("node %d: batch %d..%d n %d lepoch %d pid %d pepoch %d seq %d crc %08x len %d value %q%s",
				id, b.BaseOffset(), b.LastOffset(), b.Count(), b.LeaderEpoch(), b.ProducerID(), b.ProducerEpoch(),
				b.BaseSequence(), batchCRC(b), len(b), val, mark)
		}
		first = false
	}
}

// diffRanges describes the byte ranges where a and b differ.
func diffRanges(a, b []byte) string {
	var out bytes.Buffer
	if len(a) != len(b) {
		fmt.Fprintf(&out, "len %d vs %d; ", len(a), len(b))
	}
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] == b[i] {
			continue
		}
		j := i
		for j < min(len(a), len(b)) && a[j] != b[j] {
			j++
		}
		fmt.Fprintf(&out, "bytes [%d,%d) %x vs %x; ", i, j, a[i:j], b[i:j])
		i = j
	}
	return out.String()
}

// preferredLeaderStart creates topic t (one partition, RF 3, minimum ISR
// 2), checks that its leader is the partition's preferred replica (the
// scenarios that use it have that node lead again), appends a/0..a/2 and
// waits until every replica holds them. It returns the leader L, the
// other replicas Q and R in replica order, and the partition record.
func preferredLeaderStart(t *testing.T, ctx context.Context, c *tcluster) (l, q, r uint64, part *meta.Partition) {
	t.Helper()
	l, _ = c.topicT()
	part, _ = c.nodes[l].meta.State().Partition("t", 0)
	if part.Replicas[0] != l {
		t.Fatalf("leader %d is not the preferred replica %v", l, part.Replicas)
	}
	q, r = part.Replicas[1], part.Replicas[2]
	appendN(t, ctx, c, l, "a", 3)
	checkValues(t, values(c), names("a", 3))
	return l, q, r, part
}

// newCutCluster starts a 3-node cluster whose replication messages go
// through a dropSender per node, to cut chosen links; lagTime, if not
// zero, is every node's ReplicaLagTime.
func newCutCluster(t *testing.T, lagTime time.Duration) (*tcluster, map[uint64]*dropSender) {
	return newCutClusterWith(t, func(cfg *Config) {
		if lagTime != 0 {
			cfg.ReplicaLagTime = lagTime
		}
	})
}

// newCutClusterWith is newCutCluster with set applied to every node's
// Config.
func newCutClusterWith(t *testing.T, set func(cfg *Config)) (*tcluster, map[uint64]*dropSender) {
	senders := map[uint64]*dropSender{}
	c := newTCluster(t, 3, func(id uint64, cfg *Config) {
		d := &dropSender{inner: cfg.Replication, cut: map[uint64]bool{}}
		senders[id] = d
		cfg.Replication = d
		set(cfg)
	})
	return c, senders
}
