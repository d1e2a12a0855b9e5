package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// JoinBatches appends to dst one batch holding the records of batches, in
// their order, and returns the extended slice. The joined batch takes its
// header fields (base offset, leader epoch, producer ID, epoch and base
// sequence) from the first batch; its records get dense offsets from the
// first's base and keep their own timestamps, keys, values and headers. A
// producer that numbered the batches with consecutive sequences gets a
// batch whose sequences run from the first's to the last's: replog's
// replication joins the single-record batches of concurrent Appends this
// way, so that one batch header, one producer-sequence entry and one
// answer serve them all.
//
// The batches must be ones EncodeBatch produced (uncompressed, framing
// intact); their checksums are not verified (the caller made them). With
// an error (wrapping ErrCorruptBatch for a damaged batch, ErrInvalidRecord
// for a joined batch that would be too large) dst is returned unchanged.
func JoinBatches(dst []byte, batches [][]byte) ([]byte, error) {
	if len(batches) == 0 {
		return dst, fmt.Errorf("%w: no batch to join", ErrInvalidRecord)
	}
	start := len(dst)
	first := Batch(batches[0])
	if err := first.checkHeader(); err != nil {
		return dst, err
	}
	dst = append(dst, batches[0][:batchHeaderSize]...)
	baseTs, maxTs := first.baseNanos(), first.maxNanos()
	var count int64
	for _, raw := range batches {
		b := Batch(raw)
		if err := b.checkHeader(); err != nil {
			return dst[:start], err
		}
		if b.Attributes() != 0 {
			return dst[:start], fmt.Errorf("%w: unsupported attributes %#x", ErrCorruptBatch, b.Attributes())
		}
		maxTs = max(maxTs, b.maxNanos())
		var err error
		dst, count, err = appendRebased(dst, b, b.baseNanos()-baseTs, count)
		if err != nil {
			return dst[:start], err
		}
	}
	out := dst[start:]
	if len(out) > math.MaxInt32 || count > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: joined batch of %d bytes, %d records", ErrInvalidRecord, len(out), count)
	}
	be := binary.BigEndian
	be.PutUint32(out[offLength:], uint32(len(out)-lengthFieldEnd))
	be.PutUint32(out[offLastDelta:], uint32(count-1))
	be.PutUint64(out[offMaxTimestamp:], uint64(maxTs))
	be.PutUint32(out[offRecordCount:], uint32(count))
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return dst, nil
}

// appendRebased appends the records of b to dst, each with its timestamp
// delta moved by shift (b's base timestamp minus the joined batch's) and
// its offset delta renumbered from next. It returns the extended slice and
// the next offset delta.
func appendRebased(dst []byte, b Batch, shift, next int64) ([]byte, int64, error) {
	buf := b[batchHeaderSize:]
	for i := range b.Count() {
		n, k := binary.Varint(buf)
		if k <= 0 || n < 0 || n > int64(len(buf)-k) {
			return dst, next, fmt.Errorf("%w: record %d: bad length", ErrCorruptBatch, i)
		}
		body := buf[k : k+int(n)]
		buf = buf[k+int(n):]
		d := decoder{buf: body}
		attrs, ok := d.byte()
		tsDelta, ok1 := d.varint()
		offDelta, ok2 := d.varint()
		if !ok || attrs != 0 || !ok1 || !ok2 || offDelta != int64(i) {
			return dst, next, fmt.Errorf("%w: record %d: bad attributes, timestamp or offset delta", ErrCorruptBatch, i)
		}
		// Both timestamps lie in [0, MaxInt64]: their difference fits.
		ts := tsDelta + shift
		size := 1 + varintLen(ts) + varintLen(next) + len(d.buf)
		dst = binary.AppendVarint(dst, int64(size))
		dst = append(dst, 0)
		dst = binary.AppendVarint(dst, ts)
		dst = binary.AppendVarint(dst, next)
		dst = append(dst, d.buf...)
		next++
	}
	if len(buf) != 0 {
		return dst, next, fmt.Errorf("%w: %d trailing bytes after the last record", ErrCorruptBatch, len(buf))
	}
	return dst, next, nil
}
