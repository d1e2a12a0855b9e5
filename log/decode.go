package log

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Records appends the batch's records to dst, decoded, and returns the
// extended slice. Keys, values and header values alias b (no copy): they
// stay valid as long as b's memory does; Record.Clone detaches one. Header
// keys are strings and so are copied. Records checks the framing of every
// record but not the batch checksum (Validate does).
func (b Batch) Records(dst []Record) ([]Record, error) {
	return b.appendRecords(dst, math.MinInt64, math.MaxInt64)
}

// appendRecords decodes records with from <= offset < limit.
func (b Batch) appendRecords(dst []Record, from, limit int64) ([]Record, error) {
	var it recordIter
	if err := b.checkHeader(); err != nil {
		return dst, err
	}
	it.init(b)
	for {
		var r Record
		if !it.next(&r, true) {
			break
		}
		if r.Offset >= limit {
			break
		}
		if r.Offset >= from {
			dst = append(dst, r)
		}
	}
	return dst, it.err
}

// recordIter walks the records of a batch whose header passed checkHeader.
type recordIter struct {
	buf    []byte // remaining record bytes
	base   int64  // base offset
	baseTs int64
	count  int32
	i      int32
	maxTs  int64 // largest record timestamp seen so far
	err    error
}

func (it *recordIter) init(b Batch) {
	*it = recordIter{buf: b[batchHeaderSize:], base: b.BaseOffset(), baseTs: b.baseNanos(), count: b.Count(), maxTs: -1}
}

func (it *recordIter) fail(format string, args ...any) bool {
	it.err = fmt.Errorf("%w: record %d: %s", ErrCorruptBatch, it.i, fmt.Sprintf(format, args...))
	return false
}

// next decodes the next record into r. With full false it only checks the
// framing and fills no slices (no allocation). It returns false at the end
// or on error (it.err).
func (it *recordIter) next(r *Record, full bool) bool {
	if it.err != nil {
		return false
	}
	if it.i == it.count {
		if len(it.buf) != 0 {
			return it.fail("%d trailing bytes after the last record", len(it.buf))
		}
		return false
	}
	n, ok := it.varint()
	if !ok || n < 0 || n > int64(len(it.buf)) {
		return it.fail("bad length")
	}
	body := it.buf[:n]
	it.buf = it.buf[n:]
	d := decoder{buf: body}
	if attrs, ok := d.byte(); !ok || attrs != 0 {
		return it.fail("bad attributes")
	}
	tsDelta, ok1 := d.varint()
	offDelta, ok2 := d.varint()
	if !ok1 || !ok2 || offDelta != int64(it.i) {
		return it.fail("bad timestamp or offset delta")
	}
	ts, ok := addNanos(it.baseTs, tsDelta)
	if !ok {
		return it.fail("timestamp out of range")
	}
	it.maxTs = max(it.maxTs, ts)
	key, ok1 := d.bytesField()
	value, ok2 := d.bytesField()
	nh, ok3 := d.varint()
	if !ok1 || !ok2 || !ok3 || nh < 0 || nh > int64(len(d.buf))/2 {
		return it.fail("bad key, value or header count")
	}
	var headers []Header
	if full && nh > 0 {
		headers = make([]Header, nh)
	}
	for j := range int(nh) {
		hk, ok1 := d.bytesField()
		hv, ok2 := d.bytesField()
		if !ok1 || !ok2 || hk == nil {
			return it.fail("bad header %d", j)
		}
		if full {
			headers[j] = Header{Key: string(hk), Value: hv}
		}
	}
	if len(d.buf) != 0 {
		return it.fail("%d trailing bytes", len(d.buf))
	}
	if full {
		*r = Record{Offset: it.base + int64(it.i), Timestamp: nanosTime(ts), Key: key, Value: value, Headers: headers}
	}
	it.i++
	return true
}

func (it *recordIter) varint() (int64, bool) {
	x, n := binary.Varint(it.buf)
	if n <= 0 {
		return 0, false
	}
	it.buf = it.buf[n:]
	return x, true
}

// addNanos returns base+delta if it is a storable timestamp.
func addNanos(base, delta int64) (int64, bool) {
	if base < 0 {
		return 0, false
	}
	if delta > 0 && base > maxTimestampNanos-delta {
		return 0, false
	}
	ts := base + delta
	return ts, ts >= 0
}

// decoder reads the fields of one record body.
type decoder struct{ buf []byte }

func (d *decoder) byte() (byte, bool) {
	if len(d.buf) == 0 {
		return 0, false
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c, true
}

func (d *decoder) varint() (int64, bool) {
	x, n := binary.Varint(d.buf)
	if n <= 0 {
		return 0, false
	}
	d.buf = d.buf[n:]
	return x, true
}

// bytesField reads a length-prefixed byte string; length -1 is nil, 0 is a
// non-nil empty slice. The result aliases the buffer, capacity clipped.
func (d *decoder) bytesField() ([]byte, bool) {
	n, ok := d.varint()
	if !ok || n < -1 || n > int64(len(d.buf)) {
		return nil, false
	}
	if n == -1 {
		return nil, true
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b, true
}
