package replog_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

func TestCreateTopicIsVisibleOnEveryNodeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		ctx := context.Background()
		for i, c := range lc.Nodes() {
			name := "topic-" + string(rune('a'+i))
			if err := c.CreateTopic(ctx, name, replog.TopicConfig{Partitions: 3}); err != nil {
				t.Fatalf("node %d: CreateTopic: %v", c.ID(), err)
			}
			// No waiting: every node must see it right away.
			for _, o := range lc.Nodes() {
				ti, err := o.Topic(ctx, name)
				if err != nil {
					t.Fatalf("node %d: Topic(%q) right after CreateTopic on node %d: %v", o.ID(), name, c.ID(), err)
				}
				if got, want := ti.Config, (replog.TopicConfig{Partitions: 3, ReplicationFactor: 3, MinInSyncReplicas: 2}); got != want {
					t.Errorf("config %+v, want defaults filled in: %+v", got, want)
				}
				for _, p := range ti.Partitions {
					if p.Leader == 0 || len(p.Replicas) != 3 || len(p.ISR) != 3 {
						t.Errorf("node %d: partition %+v: want a leader and 3 replicas in the ISR", o.ID(), p)
					}
				}
			}
		}
		ts, err := lc.Node(2).Topics(ctx)
		if err != nil || len(ts) != 3 || ts[0].Name != "topic-a" || ts[2].Name != "topic-c" {
			t.Fatalf("Topics() = %v, %v; want the three topics sorted", ts, err)
		}
	})
}

func TestCreateTopicDefaultsOnSmallClusters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 2)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		ti, err := lc.Node(2).Topic(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		if ti.Config.ReplicationFactor != 2 || ti.Config.MinInSyncReplicas != 2 {
			t.Fatalf("config %+v: want RF min(3, 2 nodes) = 2 and MinISR majority of 2 = 2", ti.Config)
		}
	})
}

func TestCreateTopicErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		c := lc.Node(1)
		ctx := context.Background()
		createTopic(t, lc, "taken", replog.TopicConfig{Partitions: 1})
		tests := []struct {
			name string
			cfg  replog.TopicConfig
			want error
		}{
			{"taken", replog.TopicConfig{Partitions: 1}, replog.ErrTopicExists},
			{"", replog.TopicConfig{Partitions: 1}, replog.ErrInvalidArgument},
			{"a/b", replog.TopicConfig{Partitions: 1}, replog.ErrInvalidArgument},
			{"..", replog.TopicConfig{Partitions: 1}, replog.ErrInvalidArgument},
			{strings.Repeat("x", replog.MaxTopicNameLen+1), replog.TopicConfig{Partitions: 1}, replog.ErrInvalidArgument},
			{"ok", replog.TopicConfig{}, replog.ErrInvalidArgument},
			{"ok", replog.TopicConfig{Partitions: -1}, replog.ErrInvalidArgument},
			{"ok", replog.TopicConfig{Partitions: replog.MaxPartitions + 1}, replog.ErrInvalidArgument},
			{"ok", replog.TopicConfig{Partitions: 1, ReplicationFactor: 4}, replog.ErrInvalidArgument},
			{"ok", replog.TopicConfig{Partitions: 1, ReplicationFactor: 2, MinInSyncReplicas: 3}, replog.ErrInvalidArgument},
			{"ok", replog.TopicConfig{Partitions: 1, RetentionBytes: -1}, replog.ErrInvalidArgument},
		}
		for _, tt := range tests {
			err := c.CreateTopic(ctx, tt.name, tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Errorf("CreateTopic(%.20q, %+v) = %v, want %v", tt.name, tt.cfg, err, tt.want)
			}
		}
		// The cause stays inspectable beside the sentinel.
		err := c.CreateTopic(ctx, "taken", replog.TopicConfig{Partitions: 1})
		if !errors.Is(err, meta.ErrTopicExists) || !strings.HasPrefix(err.Error(), "replog: ") {
			t.Errorf("error %q: want meta.ErrTopicExists wrapped and a replog: prefix", err)
		}
	})
}

func TestCreateTopicWithTooFewLiveNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		if err := lc.Stop(3); err != nil {
			t.Fatal(err)
		}
		// Wait until the controller has fenced node 3: CreateTopic of RF 3
		// then has only two live nodes.
		ctx, cancel := context.WithTimeout(context.Background(), 20*testSession)
		defer cancel()
		settle()
		err := lc.Node(1).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1})
		if !errors.Is(err, replog.ErrNotEnoughReplicas) {
			t.Fatalf("CreateTopic with a node down = %v, want ErrNotEnoughReplicas", err)
		}
		if err := lc.Node(1).CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 2}); err != nil {
			t.Fatalf("CreateTopic of RF 2 with 2 live nodes: %v", err)
		}
	})
}

func TestDeleteTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		ctx := context.Background()
		createTopic(t, lc, "gone", replog.TopicConfig{Partitions: 2})
		createTopic(t, lc, "kept", replog.TopicConfig{Partitions: 1})
		if err := lc.Node(2).DeleteTopic(ctx, "gone"); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		if _, err := lc.Node(2).Topic(ctx, "gone"); !errors.Is(err, replog.ErrUnknownTopic) {
			t.Errorf("Topic on the deleting node = %v, want ErrUnknownTopic", err)
		}
		// Another node's lease read may show a deleted topic until the
		// delete reaches it (meta's lease contract): let it.
		settle()
		for _, c := range lc.Nodes() {
			if _, err := c.Topic(ctx, "gone"); !errors.Is(err, replog.ErrUnknownTopic) {
				t.Errorf("node %d: Topic after DeleteTopic = %v, want ErrUnknownTopic", c.ID(), err)
			}
			if _, err := c.Append(ctx, "gone", 0, recs("x", 1)); !errors.Is(err, replog.ErrUnknownTopic) {
				t.Errorf("node %d: Append after DeleteTopic = %v, want ErrUnknownTopic", c.ID(), err)
			}
			if _, err := c.Read(ctx, "gone", 0, 0); !errors.Is(err, replog.ErrUnknownTopic) {
				t.Errorf("node %d: Read after DeleteTopic = %v, want ErrUnknownTopic", c.ID(), err)
			}
		}
		if err := lc.Node(1).DeleteTopic(ctx, "gone"); !errors.Is(err, replog.ErrUnknownTopic) {
			t.Errorf("second DeleteTopic = %v, want ErrUnknownTopic", err)
		}
		if err := lc.Node(1).DeleteTopic(ctx, "bad name"); !errors.Is(err, replog.ErrInvalidArgument) {
			t.Errorf("DeleteTopic(bad name) = %v, want ErrInvalidArgument", err)
		}
		ts, err := lc.Node(3).Topics(ctx)
		if err != nil || len(ts) != 1 || ts[0].Name != "kept" {
			t.Errorf("Topics after delete = %v, %v; want only kept", ts, err)
		}
		// The name can be used again.
		createTopic(t, lc, "gone", replog.TopicConfig{Partitions: 1})
	})
}

func TestBadInputGetsDocumentedErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithConfig(func(c *replog.Config) { c.MaxBatchBytes = 1 << 10 }))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 2})
		c := lc.Node(2)
		ctx := context.Background()
		one := recs("k", 1)
		big := []replog.Record{{Value: make([]byte, 2<<10)}}
		appends := []struct {
			name  string
			topic string
			p     int32
			batch []replog.Record
			opts  []replog.AppendOption
			want  error
		}{
			{"bad topic name", "a b", 0, one, nil, replog.ErrInvalidArgument},
			{"empty topic name", "", 0, one, nil, replog.ErrInvalidArgument},
			{"unknown topic", "nope", 0, one, nil, replog.ErrUnknownTopic},
			{"negative partition", "t", -1, one, nil, replog.ErrInvalidArgument},
			{"partition past the end", "t", 2, one, nil, replog.ErrUnknownPartition},
			{"empty batch", "t", 0, nil, nil, replog.ErrInvalidArgument},
			{"batch above MaxBatchBytes", "t", 0, big, nil, replog.ErrRecordTooLarge},
			{"unknown acks", "t", 0, one, []replog.AppendOption{replog.WithAcks(7)}, replog.ErrInvalidArgument},
			{"timestamp before 1970", "t", 0, []replog.Record{{Timestamp: time.Unix(-5, 0)}}, nil, replog.ErrInvalidArgument},
		}
		for _, tt := range appends {
			_, err := c.Append(ctx, tt.topic, tt.p, tt.batch, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Errorf("Append with %s = %v, want %v", tt.name, err, tt.want)
			}
		}
		reads := []struct {
			name   string
			topic  string
			p      int32
			offset int64
			opts   []replog.ReadOption
			want   error
		}{
			{"bad topic name", "a b", 0, 0, nil, replog.ErrInvalidArgument},
			{"unknown topic", "nope", 0, 0, nil, replog.ErrUnknownTopic},
			{"negative partition", "t", -1, 0, nil, replog.ErrInvalidArgument},
			{"partition past the end", "t", 5, 0, nil, replog.ErrUnknownPartition},
			{"negative offset", "t", 0, -1, nil, replog.ErrOffsetOutOfRange},
			{"zero MaxBytes", "t", 0, 0, []replog.ReadOption{replog.MaxBytes(0)}, replog.ErrInvalidArgument},
			{"negative MaxRecords", "t", 0, 0, []replog.ReadOption{replog.MaxRecords(-1)}, replog.ErrInvalidArgument},
			{"negative MaxWait", "t", 0, 0, []replog.ReadOption{replog.MaxWait(-time.Second)}, replog.ErrInvalidArgument},
		}
		for _, tt := range reads {
			_, err := c.Read(ctx, tt.topic, tt.p, tt.offset, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Errorf("Read with %s = %v, want %v", tt.name, err, tt.want)
			}
		}
		// A context that ended comes back wrapped.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.Topic(cctx, "not-here"); !errors.Is(err, context.Canceled) {
			t.Errorf("Topic with a cancelled ctx = %v, want context.Canceled", err)
		}
		if err := c.CreateTopic(cctx, "new", replog.TopicConfig{Partitions: 1}); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateTopic with a cancelled ctx = %v, want context.Canceled", err)
		}
	})
}

func TestClosedNodeReturnsErrClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		c := lc.Node(3)
		if err := lc.CloseNode(3); err != nil {
			t.Fatalf("CloseNode: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close = %v, want the first's nil", err)
		}
		ctx := context.Background()
		checks := map[string]error{
			"CreateTopic": c.CreateTopic(ctx, "u", replog.TopicConfig{Partitions: 1}),
			"DeleteTopic": c.DeleteTopic(ctx, "t"),
		}
		_, checks["Topic"] = c.Topic(ctx, "t")
		_, checks["Topics"] = c.Topics(ctx)
		_, checks["Append"] = c.Append(ctx, "t", 0, recs("x", 1))
		_, checks["Read"] = c.Read(ctx, "t", 0, 0)
		for name, err := range checks {
			if !errors.Is(err, replog.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
		if got := len(lc.Nodes()); got != 2 {
			t.Errorf("Nodes() after CloseNode has %d nodes, want 2", got)
		}
		if lc.Running(3) || lc.Node(3) != c {
			t.Errorf("Running(3) = %v, Node(3) = %p; want false and the closed node %p", lc.Running(3), lc.Node(3), c)
		}
	})
}

func TestOpenValidatesConfig(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	ok := func() replog.Config {
		return replog.Config{ID: 1, Peers: []replog.NodeID{1, 2}, Transport: net.Endpoint(1)}
	}
	tests := []struct {
		name string
		edit func(*replog.Config)
	}{
		{"zero ID", func(c *replog.Config) { c.ID = 0 }},
		{"ID not in Peers", func(c *replog.Config) { c.ID = 3 }},
		{"peer 0", func(c *replog.Config) { c.Peers = []replog.NodeID{0, 1} }},
		{"duplicate peer", func(c *replog.Config) { c.Peers = []replog.NodeID{1, 2, 2} }},
		{"no transport", func(c *replog.Config) { c.Transport = nil }},
		{"bad durability", func(c *replog.Config) { c.Durability = 9 }},
		{"negative sync timeout", func(c *replog.Config) { c.SyncTimeout = -1 }},
		{"tiny session timeout", func(c *replog.Config) { c.SessionTimeout = time.Millisecond }},
		{"negative MaxBatchBytes", func(c *replog.Config) { c.MaxBatchBytes = -1 }},
		{"MaxBatchBytes below one record's batch", func(c *replog.Config) { c.MaxBatchBytes = 10 }},
		{"MaxBatchBytes over 1 GiB", func(c *replog.Config) { c.MaxBatchBytes = 2 << 30 }},
		{"SegmentSize below a frame", func(c *replog.Config) { c.SegmentSize = 1 }},
		{"bad AutoCreate", func(c *replog.Config) { c.AutoCreate = &replog.TopicConfig{} }},
		{"journal and sync group", func(c *replog.Config) { c.Journal, c.SyncGroup = true, wal.NewSyncGroup() }},
		{"AutoCreate MinInSyncReplicas above its RF", func(c *replog.Config) {
			c.AutoCreate = &replog.TopicConfig{Partitions: 1, ReplicationFactor: 1, MinInSyncReplicas: 2}
		}},
		{"MaxBatchBytes past the transport's limit", func(c *replog.Config) {
			c.Transport, c.MaxBatchBytes = limitedDropping{c.Transport, 16 << 20}, 16<<20
		}},
	}
	for _, tt := range tests {
		cfg := ok()
		tt.edit(&cfg)
		c, err := replog.Open(cfg)
		if !errors.Is(err, replog.ErrInvalidArgument) {
			t.Errorf("Open with %s = %v, want ErrInvalidArgument", tt.name, err)
		}
		if c != nil {
			c.Close()
		}
		// An Open that fails has closed the transport it was given.
		if cfg.Transport != nil {
			if err := cfg.Transport.Close(); !errors.Is(err, transport.ErrClosed) {
				t.Errorf("Open with %s left its transport open: Close = %v", tt.name, err)
			}
		}
	}
}

// Open takes a MaxBatchBytes whose messages the transport carries.
func TestOpenTakesBatchesTheTransportCarries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		c, err := replog.Open(replog.Config{ID: 1, Peers: []replog.NodeID{1}, Transport: limitedDropping{net.Endpoint(1), 16 << 20},
			MaxBatchBytes: 8 << 20})
		if err != nil {
			t.Fatalf("Open with 8 MiB batches over 16 MiB messages: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDurabilityAndAcksNames(t *testing.T) {
	for d, want := range map[replog.Durability]string{replog.SyncAlways: "SyncAlways",
		replog.SyncPeriodic: "SyncPeriodic", replog.SyncNever: "SyncNever", 7: "Durability(7)"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", d, d.String(), want)
		}
	}
	for a, want := range map[replog.Acks]string{replog.AcksAll: "AcksAll",
		replog.AcksLeader: "AcksLeader", replog.AcksNone: "AcksNone", 5: "Acks(5)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", a, a.String(), want)
		}
	}
}

// limitedDropping is a transport that refuses messages past its declared
// limit, as transport/tcp does.
type limitedDropping struct {
	transport.Transport
	max int
}

func (l limitedDropping) MaxMessageSize() int { return l.max }

func (l limitedDropping) Send(to uint64, msg []byte) error {
	if len(msg) > l.max {
		return errors.New("message larger than the transport's limit")
	}
	return l.Transport.Send(to, msg)
}

// The answer to a forwarded Read fits the transport's message limit that
// Open checked, whatever MaxBytes the reader asks for: it is cut short,
// not lost (and asked for again until the reader's ctx ends).
func TestForwardedReadFitsTransportLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxMsg = 4<<20 + 64<<10 // what 1 MiB batches need: Open takes it
		net := transport.NewMemNetwork(1)
		defer net.Close()
		peers := []replog.NodeID{1, 2, 3}
		nodes := map[replog.NodeID]*replog.Cluster{}
		for _, id := range peers {
			c, err := replog.Open(replog.Config{ID: id, Peers: peers, Transport: limitedDropping{net.Endpoint(id), maxMsg},
				MaxBatchBytes: 1 << 20, SessionTimeout: testSession})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			nodes[id] = c
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The nodes register meanwhile: CreateTopic needs two of them.
		var err error
		for range 100 {
			if err = nodes[1].CreateTopic(ctx, "t", replog.TopicConfig{Partitions: 1, ReplicationFactor: 2}); !errors.Is(err, replog.ErrNotEnoughReplicas) {
				break
			}
			time.Sleep(testSession / 10)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := leaderOf(t, nodes[1], "t", 0)
		var outsider *replog.Cluster
		for id, n := range nodes {
			if !slices.Contains(p.Replicas, id) {
				outsider = n
			}
		}
		val := make([]byte, 900<<10)
		for i := range 6 {
			if _, err := nodes[p.Leader].Append(ctx, "t", 0, []replog.Record{{Value: val}}); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		res, err := outsider.Read(rctx, "t", 0, 0, replog.MaxBytes(16<<20))
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("read of 900 KiB records through node %d, which holds no replica: %d records, %v", outsider.ID(), len(res.Records), err)
		}
	})
}
