package replog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/replog/replog/internal/mux"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/replication"
	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// Cluster is one node of a replog cluster, as seen by the application that
// embeds it: it creates topics, appends and reads on any node, whichever
// node leads the partition. All methods are safe for concurrent use.
//
// A Cluster owns the goroutines of its subsystems (the metadata raft
// driver, the replication engine, the transport's); Close stops them and
// waits for them.
type Cluster struct {
	cfg  Config
	mux  *mux.Mux
	meta *meta.Node
	repl *replication.Manager

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node: it opens (or creates) the data in cfg.Dir, joins the
// cluster over cfg.Transport and returns. It does not wait for the other
// nodes: calls made before a quorum of Peers is up wait for it inside
// their context. Open owns cfg.Transport from the call on: it starts it,
// Close closes it, and an Open that fails has closed it.
//
// Errors: ErrInvalidArgument for a Config that fails validation, and the
// errors of opening the data directory.
func Open(cfg Config) (_ *Cluster, err error) {
	defer func() {
		if err != nil && cfg.Transport != nil {
			if cerr := cfg.Transport.Close(); cerr != nil && !errors.Is(cerr, transport.ErrClosed) {
				err = errors.Join(err, fmt.Errorf("replog: open: close transport: %w", cerr))
			}
		}
	}()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		if err := wal.MkdirAll(wal.OSFS{}, cfg.Dir); err != nil {
			return nil, fmt.Errorf("replog: open: %w", err)
		}
	}
	c := &Cluster{cfg: cfg, mux: mux.New(cfg.Transport)}
	mc := meta.Config{
		ID:             cfg.ID,
		Peers:          cfg.Peers,
		Dir:            cfg.Dir,
		MemStore:       cfg.memStore,
		Raft:           c.mux.Sender(mux.TagRaft),
		Meta:           c.mux.Sender(mux.TagMeta),
		SessionTimeout: cfg.SessionTimeout,
		TickInterval:   cfg.tickInterval(),
		Logger:         cfg.Logger.With("subsystem", "meta"),
	}
	m, err := meta.Open(mc)
	if err != nil {
		return nil, translate("open metadata", err)
	}
	c.meta = m
	c.repl, err = replication.Open(replication.Config{
		ID:             cfg.ID,
		Meta:           m,
		Replication:    c.mux.Sender(mux.TagReplication),
		Forward:        c.mux.Sender(mux.TagForward),
		Dir:            c.logDir(),
		FS:             cfg.FS,
		Durability:     cfg.Durability.wal(),
		SyncInterval:   cfg.SyncInterval,
		SyncTimeout:    cfg.SyncTimeout,
		SegmentSize:    cfg.SegmentSize,
		Journal:        cfg.Journal,
		SyncGroup:      cfg.SyncGroup,
		MaxBatchBytes:  cfg.MaxBatchBytes,
		ReplicaLagTime: cfg.SessionTimeout,
		Clock:          cfg.Clock,
		Logger:         cfg.Logger.With("subsystem", "replication"),
	})
	if err != nil {
		return nil, errors.Join(translate("open replication", err), m.Close())
	}
	err = errors.Join(
		c.mux.Handle(mux.TagRaft, m.HandleRaft),
		c.mux.Handle(mux.TagMeta, m.HandleMeta),
		c.mux.Handle(mux.TagReplication, c.repl.HandleReplication),
		c.mux.Handle(mux.TagForward, c.repl.HandleForward),
	)
	if err == nil {
		err = c.mux.Start()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("replog: open: start transport: %w", err),
			c.repl.Close(), m.Close())
	}
	return c, nil
}

// logDir is where the partition logs live: Dir/partitions, or /partitions
// of the in-memory FS.
func (c *Cluster) logDir() string {
	if c.cfg.Dir == "" {
		return "/partitions"
	}
	return filepath.Join(c.cfg.Dir, "partitions")
}

// ID returns the node's ID.
func (c *Cluster) ID() NodeID { return c.cfg.ID }

// Close stops the node. It first hands the partitions this node leads to
// other in-sync replicas and waits for that (a controlled shutdown, bounded
// by SessionTimeout), so that a planned stop costs appends a leader change,
// not a session timeout; if the node is the controller it hands that role
// over too, so that the cluster need not elect one. Then it stops
// replication, the metadata and the transport, and waits for their
// goroutines. Calls in flight and every
// later call return ErrClosed. Close is idempotent: later calls return what
// the first returned.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.SessionTimeout)
		if err := c.repl.Shutdown(ctx); err != nil {
			c.cfg.Logger.Warn("controlled shutdown incomplete; the cluster will fail over",
				"err", err)
		}
		if err := c.meta.Resign(ctx); err != nil {
			c.cfg.Logger.Warn("controller not handed over; the cluster will elect one", "err", err)
		}
		cancel()
		c.closeErr = c.stop()
	})
	return c.closeErr
}

// kill stops the node without a controlled shutdown, as a crash would: the
// transport goes first, so the cluster hears nothing more from this node.
func (c *Cluster) kill() error {
	c.closeOnce.Do(func() { c.closeErr = c.stop() })
	return c.closeErr
}

// stop closes the subsystems: the transport first, so that no handler runs
// into a closed subsystem, then replication, then the metadata. A transport
// the host closed already is no error.
func (c *Cluster) stop() error {
	c.closed.Store(true)
	var errs []error
	if err := c.cfg.Transport.Close(); err != nil && !errors.Is(err, transport.ErrClosed) {
		errs = append(errs, fmt.Errorf("replog: close transport: %w", err))
	}
	if err := c.repl.Close(); err != nil && !errors.Is(err, replication.ErrClosed) {
		errs = append(errs, fmt.Errorf("replog: close replication: %w", err))
	}
	if err := c.meta.Close(); err != nil && !errors.Is(err, meta.ErrClosed) {
		errs = append(errs, fmt.Errorf("replog: close metadata: %w", err))
	}
	return errors.Join(errs...)
}

// checkOpen returns ErrClosed after Close.
func (c *Cluster) checkOpen(op string) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, op)
	}
	return nil
}
