package tcp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
)

// frameHeaderSize is the length of a frame's header: a 4-byte big-endian
// payload length and the payload's 8-byte big-endian xxhash64.
const frameHeaderSize = 12

// writeFrame writes msg as one frame to w. It does not flush.
func writeFrame(w *bufio.Writer, msg []byte) error {
	var h [frameHeaderSize]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(msg)))
	binary.BigEndian.PutUint64(h[4:12], xxhash.Sum64(msg))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}

// readFrame reads one frame from r and returns its payload, in a buffer of
// its own that the caller owns. A length above max fails with
// ErrFrameTooLarge before anything is allocated; a bad checksum fails with
// ErrChecksum. io.EOF means r ended cleanly between two frames;
// io.ErrUnexpectedEOF that it ended inside one.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	h, err := r.Peek(frameHeaderSize)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[0:4])
	sum := binary.BigEndian.Uint64(h[4:12])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if _, err := r.Discard(frameHeaderSize); err != nil {
		return nil, err
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if xxhash.Sum64(msg) != sum {
		return nil, ErrChecksum
	}
	return msg, nil
}
