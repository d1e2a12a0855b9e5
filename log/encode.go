package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"time"
)

// BatchHeader holds the header fields EncodeBatch takes from its caller; the
// rest (length, counts, timestamps, checksum) it computes.
type BatchHeader struct {
	BaseOffset    int64
	LeaderEpoch   int32
	ProducerID    int64 // -1: no idempotent producer
	ProducerEpoch int16 // -1 with ProducerID -1
	BaseSequence  int32 // -1 with ProducerID -1
}

// NoProducer is a BatchHeader's producer fields for a batch without an
// idempotent producer.
var noProducer = BatchHeader{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}

// NewBatchHeader returns a header with the given base offset and epoch and
// no idempotent producer.
func NewBatchHeader(baseOffset int64, leaderEpoch int32) BatchHeader {
	h := noProducer
	h.BaseOffset, h.LeaderEpoch = baseOffset, leaderEpoch
	return h
}

// EncodedSize returns the exact size EncodeBatch will need for records, or
// an error as EncodeBatch would return it. now stands in for zero
// timestamps, as in EncodeBatch.
func EncodedSize(records []Record, now time.Time) (int, error) {
	base, _, err := batchTimes(records, now)
	if err != nil {
		return 0, err
	}
	n := int64(batchHeaderSize)
	nowNs := now.UnixNano()
	for i := range records {
		body := recordBodySize(&records[i], i, recordNanos(&records[i], nowNs)-base)
		n += int64(varintLen(int64(body)) + body)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: batch of %d bytes", ErrInvalidRecord, n)
	}
	return int(n), nil
}

// EncodeBatch appends the encoded batch of records to dst and returns the
// extended slice. A record with a zero Timestamp gets now. Offsets of the
// records are ignored: the batch holds dense offsets from h.BaseOffset.
// When dst has room (cap(dst)-len(dst) >= EncodedSize) it allocates
// nothing. Errors wrap ErrInvalidRecord; dst is returned unchanged with
// them.
func EncodeBatch(dst []byte, h BatchHeader, records []Record, now time.Time) ([]byte, error) {
	base, maxTs, err := batchTimes(records, now)
	if err != nil {
		return dst, err
	}
	nowNs := now.UnixNano()
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BaseOffset))
	dst = be.AppendUint32(dst, 0) // length, filled below
	dst = be.AppendUint32(dst, uint32(h.LeaderEpoch))
	dst = append(dst, BatchVersion)
	dst = be.AppendUint32(dst, 0) // checksum, filled below
	dst = be.AppendUint16(dst, 0) // attributes
	dst = be.AppendUint32(dst, uint32(len(records)-1))
	dst = be.AppendUint64(dst, uint64(base))
	dst = be.AppendUint64(dst, uint64(maxTs))
	dst = be.AppendUint64(dst, uint64(h.ProducerID))
	dst = be.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(h.BaseSequence))
	dst = be.AppendUint32(dst, uint32(len(records)))
	for i := range records {
		r := &records[i]
		delta := recordNanos(r, nowNs) - base
		dst = binary.AppendVarint(dst, int64(recordBodySize(r, i, delta)))
		dst = append(dst, 0) // record attributes
		dst = binary.AppendVarint(dst, delta)
		dst = binary.AppendVarint(dst, int64(i))
		dst = appendBytesField(dst, r.Key)
		dst = appendBytesField(dst, r.Value)
		dst = binary.AppendVarint(dst, int64(len(r.Headers)))
		for _, hd := range r.Headers {
			dst = binary.AppendVarint(dst, int64(len(hd.Key)))
			dst = append(dst, hd.Key...)
			dst = appendBytesField(dst, hd.Value)
		}
	}
	b := dst[start:]
	if len(b) > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: batch of %d bytes", ErrInvalidRecord, len(b))
	}
	be.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}

// batchTimes checks the records and returns the base (first) and max
// timestamp in nanoseconds since the Unix epoch.
func batchTimes(records []Record, now time.Time) (base, maxTs int64, err error) {
	if len(records) == 0 {
		return 0, 0, fmt.Errorf("%w: empty batch", ErrInvalidRecord)
	}
	if len(records) > math.MaxInt32/minRecordSize {
		return 0, 0, fmt.Errorf("%w: %d records in one batch", ErrInvalidRecord, len(records))
	}
	if !timeInRange(now) {
		return 0, 0, fmt.Errorf("%w: clock reads %v, outside the storable range", ErrInvalidRecord, now)
	}
	nowNs := now.UnixNano()
	for i := range records {
		ts := records[i].Timestamp
		if !ts.IsZero() && !timeInRange(ts) {
			return 0, 0, fmt.Errorf("%w: record %d timestamp %v outside the storable range", ErrInvalidRecord, i, ts)
		}
		ns := recordNanos(&records[i], nowNs)
		if i == 0 {
			base, maxTs = ns, ns
		}
		maxTs = max(maxTs, ns)
	}
	return base, maxTs, nil
}

var (
	minStorableTime = time.Unix(0, 0)
	maxStorableTime = time.Unix(0, maxTimestampNanos)
)

// timeInRange reports whether t is storable: nanoseconds since the Unix
// epoch in [0, MaxInt64].
func timeInRange(t time.Time) bool {
	return !t.Before(minStorableTime) && !t.After(maxStorableTime)
}

func recordNanos(r *Record, nowNs int64) int64 {
	if r.Timestamp.IsZero() {
		return nowNs
	}
	return r.Timestamp.UnixNano()
}

// recordBodySize is the size of a record after its length prefix; delta
// is its timestamp delta.
func recordBodySize(r *Record, i int, delta int64) int {
	n := 1 + varintLen(delta) + varintLen(int64(i))
	n += bytesFieldLen(r.Key) + bytesFieldLen(r.Value)
	n += varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + bytesFieldLen(h.Value)
	}
	return n
}

func bytesFieldLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytesField(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// varintLen is the size of x as a zig-zag varint (binary.AppendVarint).
func varintLen(x int64) int {
	ux := uint64(x<<1) ^ uint64(x>>63)
	return (bits.Len64(ux|1) + 6) / 7
}
