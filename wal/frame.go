package wal

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Pos is the logical byte position of a frame. Positions grow monotonically
// across segments: a frame at Pos p with payload length n is followed by the
// frame at p + FrameHeaderSize + n. Segment headers take no positions.
type Pos int64

// FrameHeaderSize is the size of a frame's header (length, hsum, sum).
const FrameHeaderSize = 16

// SegmentHeaderSize is the size of the header at the start of each segment.
const SegmentHeaderSize = 24

const (
	segmentMagic   = "RLOGWAL\x00"
	segmentVersion = 1
	// maxDecodeLength bounds the length field a decoder accepts, whatever
	// Options.MaxFrameSize says today, so a log written with a larger limit
	// stays readable.
	maxDecodeLength = 1 << 30
)

// Frame is one frame read from a Log.
type Frame struct {
	Pos     Pos    // position of the frame
	Next    Pos    // position right after it: Pos + FrameHeaderSize + len(Payload)
	Payload []byte // see the reader's doc for how long it stays valid
}

// frameSize is the number of bytes a frame with an n-byte payload takes.
func frameSize(n int) int64 { return FrameHeaderSize + int64(n) }

// headerSum computes hsum for a frame at pos.
func headerSum(pos Pos, length uint32, sum uint64) uint32 {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:8], uint64(pos))
	binary.LittleEndian.PutUint32(b[8:12], length)
	binary.LittleEndian.PutUint64(b[12:20], sum)
	return uint32(xxhash.Sum64(b[:])) | 1
}

// putFrameHeader writes the header of a frame at pos whose payload has the
// given length and xxhash64 into h[:FrameHeaderSize].
func putFrameHeader(h []byte, pos Pos, length int, sum uint64) {
	binary.LittleEndian.PutUint32(h[0:4], uint32(length))
	binary.LittleEndian.PutUint32(h[4:8], headerSum(pos, uint32(length), sum))
	binary.LittleEndian.PutUint64(h[8:16], sum)
}

// appendFrame appends the frame for payload at pos to dst.
func appendFrame(dst []byte, pos Pos, payload []byte, sum uint64) []byte {
	var h [FrameHeaderSize]byte
	putFrameHeader(h[:], pos, len(payload), sum)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// decodeHeader checks a frame header found at pos and returns the payload
// length and checksum. ok is false when the header is not a valid header
// for a frame at pos (zeroes, garbage, a frame of another position).
func decodeHeader(h []byte, pos Pos) (length int, sum uint64, ok bool) {
	if len(h) < FrameHeaderSize {
		return 0, 0, false
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	hs := binary.LittleEndian.Uint32(h[4:8])
	sum = binary.LittleEndian.Uint64(h[8:16])
	if n > maxDecodeLength || hs != headerSum(pos, n, sum) {
		return 0, 0, false
	}
	return int(n), sum, true
}

// decodeFrame decodes the frame at the start of b, which sits at pos. It
// returns the payload (aliasing b) and the frame's total size. err describes
// why the bytes are not a whole valid frame; short is true when b ends
// before the frame does (more bytes might complete it).
func decodeFrame(b []byte, pos Pos) (payload []byte, size int, short bool, err error) {
	if len(b) < FrameHeaderSize {
		return nil, 0, true, fmt.Errorf("short frame header (%d bytes)", len(b))
	}
	n, sum, ok := decodeHeader(b, pos)
	if !ok {
		return nil, 0, false, fmt.Errorf("bad frame header")
	}
	if len(b) < FrameHeaderSize+n {
		return nil, 0, true, fmt.Errorf("short frame: header says %d payload bytes, %d present", n, len(b)-FrameHeaderSize)
	}
	payload = b[FrameHeaderSize : FrameHeaderSize+n]
	if xxhash.Sum64(payload) != sum {
		return nil, 0, false, fmt.Errorf("payload checksum mismatch")
	}
	return payload, FrameHeaderSize + n, false, nil
}

// segmentName is the file name of the segment whose first frame is at start.
func segmentName(start Pos) string { return fmt.Sprintf("%020d.wal", int64(start)) }

// parseSegmentName returns the start position a segment file name encodes.
func parseSegmentName(name string) (Pos, bool) {
	if len(name) != 24 || name[20:] != ".wal" {
		return 0, false
	}
	var v int64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return Pos(v), true
}

// segmentHeader returns the header of a segment starting at start.
func segmentHeader(start Pos) [SegmentHeaderSize]byte {
	var h [SegmentHeaderSize]byte
	copy(h[0:8], segmentMagic)
	binary.LittleEndian.PutUint32(h[8:12], segmentVersion)
	binary.LittleEndian.PutUint64(h[16:24], uint64(start))
	return h
}

// checkSegmentHeader verifies a segment header read from the file for a
// segment named by start.
func checkSegmentHeader(h []byte, start Pos) error {
	if len(h) < SegmentHeaderSize {
		return fmt.Errorf("short segment header")
	}
	if string(h[0:8]) != segmentMagic {
		return fmt.Errorf("bad segment magic %q", h[0:8])
	}
	if v := binary.LittleEndian.Uint32(h[8:12]); v != segmentVersion {
		return fmt.Errorf("unsupported segment version %d", v)
	}
	if s := Pos(binary.LittleEndian.Uint64(h[16:24])); s != start {
		return fmt.Errorf("segment header says start %d, name says %d", s, start)
	}
	return nil
}

// xxhashSum is the payload checksum.
func xxhashSum(b []byte) uint64 { return xxhash.Sum64(b) }
