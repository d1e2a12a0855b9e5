package replog_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"testing/synctest"

	"github.com/replog/replog"
	"github.com/replog/replog/wal"
)

func TestLocalClusterStopRestartCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 3})
		if _, ok := lc.FS(1).(*wal.MemFS); !ok {
			t.Fatalf("FS(1) = %T, want a *wal.MemFS by default", lc.FS(1))
		}
		fs := lc.FS(2)
		for range 3 {
			for id := replog.NodeID(1); id <= 3; id++ {
				if err := lc.Stop(id); err != nil {
					t.Fatalf("Stop(%d): %v", id, err)
				}
				if len(lc.Nodes()) != 2 || lc.Running(id) {
					t.Fatalf("after Stop(%d): %d running", id, len(lc.Nodes()))
				}
				if err := lc.Restart(id); err != nil {
					t.Fatalf("Restart(%d): %v", id, err)
				}
			}
		}
		if lc.FS(2) != fs {
			t.Fatal("FS(2) changed across restarts")
		}
		// The metadata survived every restart.
		for _, c := range lc.Nodes() {
			if _, err := c.Topic(context.Background(), "t"); err != nil {
				t.Fatalf("node %d after restarts: %v", c.ID(), err)
			}
		}
		if err := lc.Stop(9); !errors.Is(err, replog.ErrInvalidArgument) {
			t.Errorf("Stop(9) = %v, want ErrInvalidArgument", err)
		}
		if err := lc.Restart(1); !errors.Is(err, replog.ErrInvalidArgument) {
			t.Errorf("Restart of a running node = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestLocalClusterOnDisk(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3, replog.WithDir(dir))
		createTopic(t, lc, "t", replog.TopicConfig{Partitions: 1})
		if lc.FS(1) != nil {
			t.Errorf("FS(1) = %T on disk, want nil (the OS)", lc.FS(1))
		}
		if err := lc.Stop(2); err != nil {
			t.Fatal(err)
		}
		if err := lc.Restart(2); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.Node(2).Topic(context.Background(), "t"); err != nil {
			t.Fatalf("topic after restart from disk: %v", err)
		}
	})
}

func TestLocalClusterWithFS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		made := map[replog.NodeID]*wal.StallFS{}
		lc := newLocal(t, 3, replog.WithFS(func(id replog.NodeID) wal.FS {
			made[id] = wal.NewStallFS(wal.NewMemFS())
			return made[id]
		}))
		for id := replog.NodeID(1); id <= 3; id++ {
			if lc.FS(id) != wal.FS(made[id]) {
				t.Errorf("FS(%d) is not the one WithFS made", id)
			}
		}
		if lc.Network() == nil {
			t.Fatal("Network() is nil")
		}
	})
}

// A node closed through its own Cluster.Close counts as stopped: it is
// not running nor listed, and Restart opens it again.
func TestLocalNodeClosedDirectly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lc := newLocal(t, 3)
		if err := lc.Node(3).Close(); err != nil {
			t.Fatal(err)
		}
		if lc.Running(3) || len(lc.Nodes()) != 2 {
			t.Fatalf("after Node(3).Close: Running(3) = %v, %d nodes listed", lc.Running(3), len(lc.Nodes()))
		}
		if err := lc.Stop(3); !errors.Is(err, replog.ErrInvalidArgument) {
			t.Fatalf("Stop of the closed node = %v, want ErrInvalidArgument", err)
		}
		if err := lc.Restart(3); err != nil {
			t.Fatalf("Restart(3) after Node(3).Close: %v", err)
		}
		if !lc.Running(3) || len(lc.Nodes()) != 3 {
			t.Fatalf("after Restart(3): Running(3) = %v, %d nodes listed", lc.Running(3), len(lc.Nodes()))
		}
	})
}

func TestNewLocalClusterRejectsNoNodes(t *testing.T) {
	if _, err := replog.NewLocalCluster(0); !errors.Is(err, replog.ErrInvalidArgument) {
		t.Fatalf("NewLocalCluster(0) = %v, want ErrInvalidArgument", err)
	}
}

// TestStopDropsOnlyCrashedErrors: after a Crash, Stop does not report the
// writes the crash cut off, and still reports any other failure of
// closing, also where it is joined with crashed ones under one wrap (as
// the replicas' close errors are).
func TestStopDropsOnlyCrashedErrors(t *testing.T) {
	crashed := &fs.PathError{Op: "create", Path: "x", Err: wal.ErrCrashed}
	other := errors.New("replica t/1: storage failed")
	tests := []struct {
		err  error
		only bool
	}{
		{crashed, true},
		{fmt.Errorf("close replication: %w", crashed), true},
		{errors.Join(fmt.Errorf("close replication: %w", errors.Join(crashed, crashed))), true},
		{other, false},
		{errors.Join(other, crashed), false},
		{errors.Join(fmt.Errorf("close replication: %w", errors.Join(crashed, other))), false},
	}
	for _, tt := range tests {
		if got := replog.OnlyCrashed(tt.err); got != tt.only {
			t.Errorf("OnlyCrashed(%q) = %v, want %v", tt.err, got, tt.only)
		}
	}
}
