package wal

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// readAhead is how much a Reader reads per call.
const readAhead = 256 << 10

// ReadAt reads the one frame at pos, which must be a frame position in
// [Start, WrittenEnd). The payload is appended to buf[:0] (so a buf with
// capacity makes reads allocation-free); next is the position of the
// following frame. Errors: ErrOutOfRange, ErrClosed, a *CorruptError (also
// for a pos that is not a frame boundary), an IO error wrapped.
func (l *Log) ReadAt(pos Pos, buf []byte) (payload []byte, next Pos, err error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil, 0, ErrClosed
	}
	s, segEnd, err := l.acquireLocked(pos)
	l.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	defer l.release(s)
	off := SegmentHeaderSize + int64(pos-s.start)
	// One read for the header and as much of the payload as buf holds
	// (at least 4 KiB): a second read only for a frame larger than that.
	first := min(int64(max(cap(buf), 4<<10)), int64(segEnd-pos))
	if first < FrameHeaderSize {
		return nil, 0, &CorruptError{Segment: s.name, Offset: off, Reason: "no frame fits before the segment's end"}
	}
	buf = slices.Grow(buf[:0], int(first))[:first]
	if err := readFull(s.f, buf, off); err != nil {
		return nil, 0, fmt.Errorf("wal: read %s at %d: %w", s.name, off, err)
	}
	n, sum, ok := decodeHeader(buf, pos)
	if !ok || pos+Pos(frameSize(n)) > segEnd {
		return nil, 0, &CorruptError{Segment: s.name, Offset: off, Reason: "no valid frame header at this position"}
	}
	if frameSize(n) <= first {
		copy(buf, buf[FrameHeaderSize:frameSize(n)])
		buf = buf[:n]
	} else {
		buf = slices.Grow(buf[:0], n)[:n]
		if err := readFull(s.f, buf, off+FrameHeaderSize); err != nil {
			return nil, 0, fmt.Errorf("wal: read %s at %d: %w", s.name, off, err)
		}
	}
	if xxhash.Sum64(buf) != sum {
		return nil, 0, &CorruptError{Segment: s.name, Offset: off, Reason: "payload checksum mismatch"}
	}
	return buf, pos + Pos(frameSize(n)), nil
}

// readFull reads len(b) bytes at off; io.EOF after all of them is fine.
func readFull(f File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Reader reads consecutive frames from a position, with read-ahead: a read
// call fetches many frames at once. Not safe for concurrent use; many
// Readers may read one Log at once. Close it to release its segment.
type Reader struct {
	l      *Log
	pos    Pos      // next frame
	seg    *segment // holds a reference; nil if none
	segEnd Pos      // end of seg when acquired (WrittenEnd for the last)
	buf    []byte   // read-ahead: bytes from position bufPos
	bufPos Pos
	gen    uint64 // truncation generation the buffer belongs to
	ahead  int    // bytes a read fetches (readAhead unless NewReaderBuffer set it)
	err    error  // sticky: ErrClosed after Close
}

// NewReader returns a Reader whose first frame is the one at from, a frame
// position in [Start, WrittenEnd]. Errors: ErrOutOfRange, ErrClosed.
func (l *Log) NewReader(from Pos) (*Reader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return nil, ErrClosed
	}
	if from < l.mu.segs[0].start || from > l.WrittenEnd() {
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOutOfRange, from, l.mu.segs[0].start, l.WrittenEnd())
	}
	return &Reader{l: l, pos: from, gen: l.truncGen.Load(), ahead: readAhead}, nil
}

// NewReaderBuffer is NewReader reading ahead into buf instead of a buffer
// of 256 KiB it allocates: a read fetches up to cap(buf) bytes (at least
// a frame header's), more only for a frame larger than that. A caller
// that reads a few frames at a time from many places (a log serving
// reads) reuses its buffers and sizes its reads to what it wants.
func (l *Log) NewReaderBuffer(from Pos, buf []byte) (*Reader, error) {
	r, err := l.NewReader(from)
	if err != nil {
		return nil, err
	}
	r.buf, r.ahead = buf[:0], max(cap(buf), FrameHeaderSize)
	return r, nil
}

// Pos is the position of the frame the next call to Next returns.
func (r *Reader) Pos() Pos { return r.pos }

// Next returns the next frame. At WrittenEnd it returns io.EOF; call it again
// later for frames written since. The payload is valid until the next call
// of Next or Close. Errors: io.EOF, ErrOutOfRange (the position was dropped
// by TruncateAfter or DeleteBefore), a *CorruptError, ErrClosed, IO errors.
func (r *Reader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	if g := r.l.truncGen.Load(); g != r.gen {
		r.gen = g
		r.buf = r.buf[:0]
		r.dropSegment()
	}
	written := r.l.WrittenEnd()
	if r.pos == written {
		return Frame{}, io.EOF
	}
	if r.pos > written {
		return Frame{}, fmt.Errorf("%w: reader at %d, log ends at %d", ErrOutOfRange, r.pos, written)
	}
	if r.seg != nil && r.pos >= r.segEnd {
		r.refreshEnd()
	}
	if r.seg == nil || r.pos >= r.segEnd {
		if err := r.switchSegment(); err != nil {
			return Frame{}, err
		}
	}
	if frame, ok := r.fromBuffer(); ok {
		return frame, nil
	}
	if err := r.fill(); err != nil {
		return Frame{}, err
	}
	if frame, ok := r.fromBuffer(); ok {
		return frame, nil
	}
	off := SegmentHeaderSize + int64(r.pos-r.seg.start)
	return Frame{}, &CorruptError{Segment: r.seg.name, Offset: off, Reason: "no valid frame at this position"}
}

// refreshEnd updates the end of the reader's segment: the active segment
// grows, and a segment stops being the active one when the Log rolls.
func (r *Reader) refreshEnd() {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := l.mu.segs
	i, found := slices.BinarySearchFunc(segs, r.seg.start, func(s *segment, p Pos) int { return cmpPos(s.start, p) })
	if !found || segs[i] != r.seg {
		return // dropped; switchSegment will tell
	}
	if i+1 < len(segs) {
		r.segEnd = segs[i+1].start
	} else {
		r.segEnd = l.WrittenEnd()
	}
}

// fromBuffer decodes the frame at r.pos from the read-ahead buffer, if it is
// whole there.
func (r *Reader) fromBuffer() (Frame, bool) {
	at := int(r.pos - r.bufPos)
	if r.pos < r.bufPos || at >= len(r.buf) {
		return Frame{}, false
	}
	payload, size, _, err := decodeFrame(r.buf[at:], r.pos)
	if err != nil {
		return Frame{}, false
	}
	f := Frame{Pos: r.pos, Next: r.pos + Pos(size), Payload: payload}
	r.pos = f.Next
	return f, true
}

// fill reads from r.pos on, up to r.ahead bytes or the whole next frame,
// bounded by the segment's end.
func (r *Reader) fill() error {
	limit := min(r.segEnd, r.l.WrittenEnd())
	off := SegmentHeaderSize + int64(r.pos-r.seg.start)
	want := min(int64(r.ahead), int64(limit-r.pos))
	if want <= 0 { // truncated under us
		return fmt.Errorf("%w: reader at %d, log ends at %d", ErrOutOfRange, r.pos, limit)
	}
	// Peek at the header for frames bigger than the read-ahead.
	if len(r.buf) >= int(r.pos-r.bufPos)+FrameHeaderSize && r.pos >= r.bufPos {
		if n := frameLen(r.buf[r.pos-r.bufPos:], r.pos); int64(n) > want {
			want = min(int64(n), int64(limit-r.pos))
		}
	}
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, max(want, int64(r.ahead)))
	}
	r.buf, r.bufPos = r.buf[:want], r.pos
	// A short read is damage (io.ErrUnexpectedEOF), not the end of the
	// log that Next reports as io.EOF.
	if err := readFull(r.seg.f, r.buf, off); err != nil {
		r.buf = r.buf[:0]
		return fmt.Errorf("wal: read %s at %d: %w", r.seg.name, off, err)
	}
	if n := len(r.buf); n >= FrameHeaderSize {
		if need := frameLen(r.buf, r.pos); need > n && int64(need) <= int64(limit-r.pos) {
			return r.fill() // one frame larger than what we read
		}
	}
	return nil
}

// frameLen is the size of the frame at pos whose bytes start b, if its
// header is valid there (checksummed with its position: a damaged length
// does not make the reader fetch up to the segment's end), else
// FrameHeaderSize.
func frameLen(b []byte, pos Pos) int {
	n, _, ok := decodeHeader(b, pos)
	if !ok {
		return FrameHeaderSize
	}
	return FrameHeaderSize + n
}

// switchSegment moves the reader to the segment holding r.pos.
func (r *Reader) switchSegment() error {
	r.dropSegment()
	r.l.mu.Lock()
	if r.l.mu.closed {
		r.l.mu.Unlock()
		r.err = ErrClosed
		return r.err
	}
	s, end, err := r.l.acquireLocked(r.pos)
	r.l.mu.Unlock()
	if err != nil {
		return err
	}
	r.seg, r.segEnd = s, end
	r.buf = r.buf[:0]
	return nil
}

func (r *Reader) dropSegment() {
	if r.seg != nil {
		r.l.release(r.seg)
		r.seg = nil
	}
}

// Close releases the Reader's segment. Next returns ErrClosed afterwards.
func (r *Reader) Close() error {
	r.dropSegment()
	r.err = ErrClosed
	return nil
}

// Frames iterates over the frames from position from up to WrittenEnd (as it
// moves while iterating). An error is yielded once and ends the iteration;
// reaching WrittenEnd ends it without one. Payloads are valid until the next
// iteration.
func (l *Log) Frames(from Pos) iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		r, err := l.NewReader(from)
		if err != nil {
			yield(Frame{}, err)
			return
		}
		defer r.Close()
		for {
			f, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(f, err) || err != nil {
				return
			}
		}
	}
}
