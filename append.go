package replog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/replication"
)

// Acks is how many replicas must hold an appended batch before Append
// returns.
type Acks int8

const (
	// AcksNone: Append returns once the batch is handed to the leader's log
	// (or sent towards the leader), without waiting for any write. The
	// batch may be lost without the caller hearing of it.
	AcksNone Acks = 0
	// AcksLeader: Append returns once the leader has written (and, under
	// SyncAlways, synced) the batch. A leader that crashes before its
	// followers copied it loses the batch, and so does one cut off from
	// the cluster, whose partitions the controller gives to others: such a
	// leader stops acknowledging once it has been out of touch with the
	// controller for SessionTimeout (before that, it may still).
	AcksLeader Acks = 1
	// AcksAll: Append returns once every member of the ISR holds the batch
	// (the high watermark passed it) and the ISR has at least
	// MinInSyncReplicas members. The default, and the only setting under
	// which an acknowledged batch survives the loss of a node.
	AcksAll Acks = -1
)

// String returns the setting's name.
func (a Acks) String() string {
	switch a {
	case AcksNone:
		return "AcksNone"
	case AcksLeader:
		return "AcksLeader"
	case AcksAll:
		return "AcksAll"
	}
	return fmt.Sprintf("Acks(%d)", int8(a))
}

// appendOptions are the options of one Append.
type appendOptions struct {
	acks Acks
}

// AppendOption changes how one Append behaves.
type AppendOption func(*appendOptions)

// WithAcks sets the acknowledgement an Append waits for. Default AcksAll.
func WithAcks(a Acks) AppendOption {
	return func(o *appendOptions) { o.acks = a }
}

// AppendResult gives the offsets an appended batch got: BaseOffset for its
// first record, LastOffset for its last, every offset between them used by
// the batch in order. With AcksNone both are -1 (not known).
type AppendResult struct {
	BaseOffset, LastOffset int64
}

// Append appends batch, in order, as one batch to a partition, on any
// node: a node that does not lead the partition forwards the batch to the
// leader. It rides out elections and lost messages inside ctx, and never
// writes a batch twice for its own retries.
//
// The records are copied before Append returns; Offset fields are ignored;
// a zero Timestamp becomes the clock of the node Append is called on
// (Config.Clock), which need not be the leader (Kafka stamps
// CreateTime on the producer too).
//
// Errors: ErrInvalidArgument (topic name, negative partition, empty batch,
// timestamp out of range, unknown Acks), ErrUnknownTopic (unless
// Config.AutoCreate), ErrUnknownPartition, ErrRecordTooLarge,
// ErrNotEnoughReplicas (AcksAll with the ISR below MinInSyncReplicas for
// Config.SessionTimeout since the leader first answered so: a shorter
// shortage, as after a leader change until the followers rejoin, is
// waited out within ctx; a ctx that ends meanwhile gives an error matching
// both ctx's error and ErrNotEnoughReplicas), ErrStorageStalled,
// ErrNotLeader (the topic was deleted while the append was on its way:
// the batch went with the topic, or never reached it; an append already
// sent first waits, up to its resend timeout, for the leader's answer,
// which may tell it was not written and send it to a topic created again
// under the name), ErrClosed, ctx's
// error (also when no leader could be reached within ctx). After
// ErrNotEnoughReplicas, ErrStorageStalled, ErrNotLeader, ErrClosed (the
// node closed while the batch was on its way) or a ctx error the batch
// may or may not have been written (the ISR may shrink after the leader
// wrote it). Such a batch is not sent again once Append returned, so a
// batch appended next through the same node does not land before it
// because of a retry; unless it had gone as one batch with concurrent
// Appends still waiting, which are sent again with it. (AcksNone batches
// may be sent again, up to four times in all, after a lost message or a
// leader change, and so may land after batches appended later.)
// ErrUnknownTopic means it was not written.
func (c *Cluster) Append(ctx context.Context, topic string, partition int32,
	batch []Record, opts ...AppendOption) (AppendResult, error) {
	const op = "append"
	if err := c.checkOpen(op); err != nil {
		return AppendResult{}, err
	}
	o := appendOptions{acks: AcksAll}
	for _, f := range opts {
		f(&o)
	}
	if err := c.checkAppend(op, topic, partition, batch, o.acks); err != nil {
		return AppendResult{}, err
	}
	if err := c.knownPartition(ctx, op, topic, partition, c.cfg.AutoCreate); err != nil {
		return AppendResult{}, err
	}
	base, last, err := c.repl.Append(ctx, topic, partition, batch, replication.Acks(o.acks))
	if err != nil {
		return AppendResult{}, translate(op, err)
	}
	return AppendResult{BaseOffset: base, LastOffset: last}, nil
}

// checkAppend validates an Append's arguments.
func (c *Cluster) checkAppend(op, topic string, partition int32, batch []Record, acks Acks) error {
	if err := meta.ValidTopicName(topic); err != nil {
		return translate(op, err)
	}
	if partition < 0 {
		return invalid(op, "partition %d", partition)
	}
	if len(batch) == 0 {
		return invalid(op, "empty batch")
	}
	if acks != AcksNone && acks != AcksLeader && acks != AcksAll {
		return invalid(op, "acks %v", acks)
	}
	size, err := log.EncodedSize(batch, c.cfg.Clock())
	if err != nil {
		return translate(op, err)
	}
	if size > c.cfg.MaxBatchBytes {
		return fmt.Errorf("%w: %s: %d bytes encoded, MaxBatchBytes is %d",
			ErrRecordTooLarge, op, size, c.cfg.MaxBatchBytes)
	}
	return nil
}

// knownPartition checks that the partition exists. The common case reads
// the node's metadata snapshot and allocates nothing; a topic missing there
// is looked up lease-checked (so a topic whose CreateTopic returned is
// found) and, with autoCreate, created.
func (c *Cluster) knownPartition(ctx context.Context, op, topic string, partition int32, autoCreate *TopicConfig) error {
	t, ok := c.meta.State().Topic(topic)
	if !ok {
		var err error
		t, err = c.meta.Topic(ctx, topic)
		if errors.Is(err, meta.ErrUnknownTopic) && autoCreate != nil {
			err = c.CreateTopic(ctx, topic, *autoCreate)
			switch {
			case err == nil || errors.Is(err, ErrTopicExists):
				t, err = c.meta.Topic(ctx, topic)
			case err != nil:
				return fmt.Errorf("%s: auto-create: %w", op, err) // a replog error already
			}
		}
		if err != nil {
			return translate(op, err)
		}
	}
	if partition >= int32(len(t.Partitions)) && ok {
		// The local metadata may hold an older topic of the same name
		// (deleted and created again with more partitions): ask the group.
		if t2, err := c.meta.LinearizableTopic(ctx, topic); err == nil {
			t = t2
		}
	}
	if partition >= int32(len(t.Partitions)) {
		return fmt.Errorf("%w: %s: topic %q has %d partitions, not %d",
			ErrUnknownPartition, op, topic, len(t.Partitions), partition)
	}
	return nil
}

// Defaults of the read options.
const DefaultReadMaxBytes = 1 << 20

// readOptions are the options of one Read.
type readOptions struct {
	maxBytes, maxRecords int
	maxWait              time.Duration
}

// ReadOption changes how one Read behaves.
type ReadOption func(*readOptions)

// MaxBytes bounds the encoded size of the batches a Read decodes. A Read
// returns at least one record if there is one, whatever its size.
// Default 1 MiB.
func MaxBytes(n int) ReadOption { return func(o *readOptions) { o.maxBytes = n } }

// MaxRecords bounds the number of records a Read returns. Default 0: no
// bound but MaxBytes.
func MaxRecords(n int) ReadOption { return func(o *readOptions) { o.maxRecords = n } }

// MaxWait makes a Read that finds no committed record at offset wait up to
// d for one (woken by the commit, never by polling). Default 0: return at
// once, possibly with no records. A read a node sends to the leader (it
// holds no replica, or its replica lags) waits at most 30 s there, and
// returns no records after that; read again to wait longer.
func MaxWait(d time.Duration) ReadOption { return func(o *readOptions) { o.maxWait = d } }

// ReadResult is what a Read returns.
type ReadResult struct {
	// Records are committed records from the offset asked on, in offset
	// order. Their Key, Value and header Values belong to the caller.
	Records []Record
	// HighWatermark is the offset below which records are committed, and
	// LogStartOffset the first one retention kept, as the replica that
	// answered knows them.
	HighWatermark, LogStartOffset int64
}

// Read returns committed records (below the high watermark) of a
// partition, from offset on. A node that holds a replica answers from it,
// up to the high watermark it knows; others ask the leader, and so does a
// follower whose log does not reach offset (it may lag the leader). An
// offset at the high watermark returns no records (or, with MaxWait,
// waits for one).
//
// Errors: ErrInvalidArgument (topic name, negative partition or option),
// ErrUnknownTopic, ErrUnknownPartition, ErrOffsetOutOfRange (offset
// negative, below LogStartOffset or above the leader's log end; the
// result then holds the answering replica's HighWatermark and
// LogStartOffset), ErrClosed, ctx's error (also for a ctx that ended
// before the call).
func (c *Cluster) Read(ctx context.Context, topic string, partition int32,
	offset int64, opts ...ReadOption) (ReadResult, error) {
	const op = "read"
	if err := c.checkOpen(op); err != nil {
		return ReadResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return ReadResult{}, fmt.Errorf("replog: %s: %w", op, err)
	}
	o := readOptions{maxBytes: DefaultReadMaxBytes}
	for _, f := range opts {
		f(&o)
	}
	if err := meta.ValidTopicName(topic); err != nil {
		return ReadResult{}, translate(op, err)
	}
	switch {
	case partition < 0:
		return ReadResult{}, invalid(op, "partition %d", partition)
	case o.maxBytes < 1, o.maxRecords < 0, o.maxWait < 0:
		return ReadResult{}, invalid(op, "MaxBytes %d, MaxRecords %d, MaxWait %v",
			o.maxBytes, o.maxRecords, o.maxWait)
	}
	if err := c.knownPartition(ctx, op, topic, partition, nil); err != nil {
		return ReadResult{}, err
	}
	res, err := c.repl.Read(ctx, topic, partition, offset, replication.ReadOptions{
		MaxBytes: o.maxBytes, MaxRecords: o.maxRecords, MaxWait: o.maxWait,
	})
	if err != nil {
		// With ErrOffsetOutOfRange the bounds tell the caller where to
		// go on.
		return ReadResult{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}, translate(op, err)
	}
	return ReadResult{Records: res.Records, HighWatermark: res.HighWatermark,
		LogStartOffset: res.LogStartOffset}, nil
}
