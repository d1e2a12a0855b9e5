package meta

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

type nopSender struct{}

func (nopSender) Send(uint64, []byte) error { return nil }

func TestConfigValidate(t *testing.T) {
	ok := Config{ID: 1, Peers: []uint64{1, 2, 3}, Raft: nopSender{}, Meta: nopSender{}}
	bad := []func(c *Config){
		func(c *Config) { c.ID = 0 },
		func(c *Config) { c.Peers = []uint64{2, 3} },
		func(c *Config) { c.Peers = []uint64{1, 0} },
		func(c *Config) { c.Peers = []uint64{1, 2, 2} },
		func(c *Config) { c.Raft = nil },
		func(c *Config) { c.Meta = nil },
		func(c *Config) { c.Dir, c.MemStore = "x", NewMemStore() },
		func(c *Config) { c.SessionTimeout = 300 * time.Millisecond },
		func(c *Config) { c.ElectionTicks = 1 },
		func(c *Config) { c.TickInterval = -1 },
	}
	for i, mod := range bad {
		c := ok
		mod(&c)
		if err := c.validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	c := ok
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.SessionTimeout != 2*time.Second || c.TickInterval != 100*time.Millisecond || c.ElectionTicks != 10 ||
		c.SnapshotEntries != 1000 || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	// A MemStore serves one node at a time.
	m := NewMemStore()
	synctest.Test(t, func(t *testing.T) {
		a, err := Open(Config{ID: 1, Peers: []uint64{1}, Raft: nopSender{}, Meta: nopSender{}, MemStore: m})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := Open(Config{ID: 1, Peers: []uint64{1}, Raft: nopSender{}, Meta: nopSender{}, MemStore: m}); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("second Open on one MemStore: %v", err)
		}
	})
}

// TestCloseEndsCallsInFlight: a proposal that cannot commit (its node cut
// off) ends with ErrClosed when the node closes, and calls after Close
// return ErrClosed at once.
func TestCloseEndsCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, false)
		c.leader()
		c.registered()
		c.net.Isolate(1)
		n := c.nodes[1]
		errc := make(chan error, 1)
		go func() {
			_, err := n.CreateTopic(ctxT(t, time.Hour), "t", TopicConfig{Partitions: 1})
			errc <- err
		}()
		synctest.Wait()
		c.stop(1)
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("proposal in flight at Close: %v", err)
		}
		if err := n.DeleteTopic(ctxT(t, time.Hour), "t"); !errors.Is(err, ErrClosed) {
			t.Fatalf("call after Close: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
