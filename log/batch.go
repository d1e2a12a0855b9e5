package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// Header is one record header: a string key and an optional value. A nil
// Value and an empty one are stored apart and decode apart.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a partition log.
//
// Offset is assigned by the log and ignored by AppendLeader. A zero
// Timestamp on AppendLeader means "now" by the log's clock. Timestamps are
// stored with nanosecond precision (see doc.go). Key and Value keep the
// difference between nil and empty.
type Record struct {
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Clone returns a deep copy of r that shares no memory with it: use it to
// keep a record decoded from a buffer that is about to be reused.
func (r Record) Clone() Record {
	c := r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	if r.Headers != nil {
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = Header{Key: h.Key, Value: cloneBytes(h.Value)}
		}
	}
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// BatchVersion is the version (magic byte) of the record batch format this
// package writes and reads.
const BatchVersion = 1

// Offsets of the batch header fields; see doc.go for the drawing.
const (
	offBaseOffset     = 0
	offLength         = 8
	offLeaderEpoch    = 12
	offMagic          = 16
	offCRC            = 17
	offAttributes     = 21
	offLastDelta      = 23
	offBaseTimestamp  = 27
	offMaxTimestamp   = 35
	offProducerID     = 43
	offProducerEpoch  = 51
	offBaseSequence   = 53
	offRecordCount    = 57
	batchHeaderSize   = BatchHeaderSize
	lengthFieldEnd    = offLength + 4
	minRecordSize     = 7 // length, attributes, ts delta, offset delta, key, value, header count: one byte each at least
	compressionMask   = 0x7
	maxTimestampNanos = math.MaxInt64
)

// BatchHeaderSize is the size of a batch header in bytes; the smallest
// valid batch is this plus one record.
const BatchHeaderSize = 61

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is an encoded record batch, a view over bytes: the accessors read
// header fields in place and never copy. A Batch from SplitBatch or a read
// is structurally sound (length and header checked); call Validate to check
// the checksum and records too.
type Batch []byte

// BaseOffset is the offset of the batch's first record.
func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// LastOffset is the offset of the batch's last record.
func (b Batch) LastOffset() int64 {
	return b.BaseOffset() + int64(int32(binary.BigEndian.Uint32(b[offLastDelta:])))
}

// NextOffset is LastOffset()+1: the offset the record after this batch has.
func (b Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// LeaderEpoch is the epoch of the leader that appended the batch.
func (b Batch) LeaderEpoch() int32 { return int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])) }

// Count is the number of records in the batch.
func (b Batch) Count() int32 { return int32(binary.BigEndian.Uint32(b[offRecordCount:])) }

// Attributes returns the batch attributes; bits 0-2 name the compression
// codec (only 0, none, exists in version 1), the rest are reserved zero.
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[offAttributes:])) }

// BaseTimestamp is the timestamp of the first record.
func (b Batch) BaseTimestamp() time.Time { return nanosTime(b.baseNanos()) }

// MaxTimestamp is the largest record timestamp in the batch.
func (b Batch) MaxTimestamp() time.Time { return nanosTime(b.maxNanos()) }

// ProducerID, ProducerEpoch and BaseSequence identify an idempotent
// producer's batch; -1 when unused.
func (b Batch) ProducerID() int64 { return int64(binary.BigEndian.Uint64(b[offProducerID:])) }

// ProducerEpoch: see ProducerID.
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[offProducerEpoch:])) }

// BaseSequence: see ProducerID.
func (b Batch) BaseSequence() int32 { return int32(binary.BigEndian.Uint32(b[offBaseSequence:])) }

func (b Batch) baseNanos() int64 { return int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])) }
func (b Batch) maxNanos() int64  { return int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])) }
func (b Batch) crc() uint32      { return binary.BigEndian.Uint32(b[offCRC:]) }

// setBaseOffset stamps the base offset in place; the checksum does not
// cover it, so it stays valid.
func (b Batch) setBaseOffset(off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }

// setLeaderEpoch stamps the leader epoch in place; not checksummed either.
func (b Batch) setLeaderEpoch(e int32) { binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e)) }

func nanosTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// checkHeader checks what every accessor relies on: the length field, the
// magic byte, a positive record count that matches the last offset delta,
// and a base offset that leaves room for the records.
func (b Batch) checkHeader() error {
	if len(b) < batchHeaderSize {
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorruptBatch, len(b))
	}
	if n := int64(int32(binary.BigEndian.Uint32(b[offLength:]))); n != int64(len(b)-lengthFieldEnd) {
		return fmt.Errorf("%w: length field %d, batch has %d bytes after it", ErrCorruptBatch, n, len(b)-lengthFieldEnd)
	}
	if b[offMagic] != BatchVersion {
		return fmt.Errorf("%w: unknown batch version %d", ErrCorruptBatch, b[offMagic])
	}
	count := b.Count()
	if count <= 0 || int64(count) > int64(len(b)-batchHeaderSize)/minRecordSize {
		return fmt.Errorf("%w: record count %d", ErrCorruptBatch, count)
	}
	if last := int32(binary.BigEndian.Uint32(b[offLastDelta:])); last != count-1 {
		return fmt.Errorf("%w: last offset delta %d with %d records", ErrCorruptBatch, last, count)
	}
	if base := b.BaseOffset(); base < 0 || base > math.MaxInt64-int64(count) {
		return fmt.Errorf("%w: base offset %d", ErrCorruptBatch, base)
	}
	return nil
}

// Validate checks the whole batch: header, checksum, and every record's
// framing. It allocates nothing.
func (b Batch) Validate() error {
	if err := b.checkHeader(); err != nil {
		return err
	}
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != b.crc() {
		return fmt.Errorf("%w: checksum %08x, header says %08x", ErrCorruptBatch, got, b.crc())
	}
	if b.Attributes() != 0 {
		return fmt.Errorf("%w: unsupported attributes %#x", ErrCorruptBatch, b.Attributes())
	}
	var it recordIter
	it.init(b)
	var r Record
	for it.next(&r, false) {
	}
	if it.err != nil {
		return it.err
	}
	if it.maxTs != b.maxNanos() {
		return fmt.Errorf("%w: max timestamp %d, records say %d", ErrCorruptBatch, b.maxNanos(), it.maxTs)
	}
	return nil
}

// SplitBatch cuts the first batch off buf, a concatenation of encoded
// batches as ReadBatches returns them. It checks the length and header,
// not the checksum (Validate does). The returned Batch aliases buf.
func SplitBatch(buf []byte) (Batch, []byte, error) {
	if len(buf) < batchHeaderSize {
		return nil, buf, fmt.Errorf("%w: %d bytes left, shorter than a header", ErrCorruptBatch, len(buf))
	}
	n := int64(int32(binary.BigEndian.Uint32(buf[offLength:])))
	if n < batchHeaderSize-lengthFieldEnd || n > int64(len(buf)-lengthFieldEnd) {
		return nil, buf, fmt.Errorf("%w: length field %d with %d bytes left", ErrCorruptBatch, n, len(buf))
	}
	end := lengthFieldEnd + int(n)
	b := Batch(buf[:end:end])
	if err := b.checkHeader(); err != nil {
		return nil, buf, err
	}
	return b, buf[end:], nil
}
