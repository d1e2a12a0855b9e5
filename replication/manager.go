package replication

import (
	"context"
	"time"

	"github.com/replog/replog/log"
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
type Manager struct {
	cfg Config
}

// Open starts a Manager: it watches cfg.Meta and opens a replica for
// every partition assigned to this node.
func Open(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Manager{cfg: cfg}, nil
}

// HandleReplication takes one inbound mux.TagReplication message (the
// payload after the tag); it never blocks.
func (m *Manager) HandleReplication(from uint64, msg []byte) {}

// HandleForward takes one inbound mux.TagForward message (the payload
// after the tag); it never blocks.
func (m *Manager) HandleForward(from uint64, msg []byte) {}

// Append appends records to a partition as one batch, through its leader,
// and returns the offsets of the first and last record once acks allows.
func (m *Manager) Append(ctx context.Context, topic string, partition int32, records []log.Record, acks Acks) (base, last int64, err error) {
	return 0, 0, ErrClosed
}

// Read returns committed records of a partition from offset on.
func (m *Manager) Read(ctx context.Context, topic string, partition int32, offset int64, opts ReadOptions) (ReadResult, error) {
	return ReadResult{}, ErrClosed
}

// PartitionState returns the high watermark and log start offset of this
// node's replica of a partition; ok is false if it holds none.
func (m *Manager) PartitionState(topic string, partition int32) (hw, logStart int64, ok bool) {
	return 0, 0, false
}

// Shutdown is a controlled shutdown: it drains this node in meta so that
// its leaderships move to other ISR members, and waits, bounded by ctx,
// until it leads nothing and the appends in flight are answered. Call it
// before Close.
func (m *Manager) Shutdown(ctx context.Context) error { return nil }

// Close stops every replica and goroutine of the Manager and closes the
// logs. Calls in flight return ErrClosed.
func (m *Manager) Close() error { return nil }
