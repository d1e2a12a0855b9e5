package tcp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/cespare/xxhash/v2"
)

// frameHeaderSize is the length of a frame's header: a 4-byte big-endian
// payload length and the payload's 8-byte big-endian xxhash64.
const frameHeaderSize = 12

// Messages up to copyLimit bytes are copied into the frameWriter's buffer;
// larger ones are written straight from the sender's buffer (writev).
// maxIovecs keeps one writev under the kernel's IOV_MAX of 1024.
const (
	copyLimit = 4 << 10
	maxIovecs = 512
)

// frameWriter writes a burst of frames in as few system calls as it can:
// headers and small messages go into one buffer, large messages are
// referenced, and flush hands the lot to one writev (net.Buffers).
type frameWriter struct {
	w    io.Writer
	buf  []byte      // headers and small messages; its capacity never grows
	iov  net.Buffers // slices of buf and large messages, in order
	mark int         // buf[mark:] is not in iov yet
}

func newFrameWriter(size int) *frameWriter {
	return &frameWriter{buf: make([]byte, 0, max(size, frameHeaderSize+copyLimit))}
}

// reset discards anything pending and writes to w from now on.
func (fw *frameWriter) reset(w io.Writer) {
	fw.w = w
	clear(fw.iov)
	fw.iov, fw.buf, fw.mark = fw.iov[:0], fw.buf[:0], 0
}

// add appends msg as one frame, flushing first if the buffer is full. msg
// must stay untouched until the next flush.
func (fw *frameWriter) add(msg []byte) error {
	small := len(msg) <= copyLimit
	need := frameHeaderSize
	if small {
		need += len(msg)
	}
	if len(fw.buf)+need > cap(fw.buf) || len(fw.iov) >= maxIovecs-2 {
		if err := fw.flush(); err != nil {
			return err
		}
	}
	fw.buf = binary.BigEndian.AppendUint32(fw.buf, uint32(len(msg)))
	fw.buf = binary.BigEndian.AppendUint64(fw.buf, xxhash.Sum64(msg))
	if small {
		fw.buf = append(fw.buf, msg...)
		return nil
	}
	fw.iov = append(fw.iov, fw.buf[fw.mark:], msg)
	fw.mark = len(fw.buf)
	return nil
}

// flush writes everything added since the last flush.
func (fw *frameWriter) flush() error {
	if fw.mark < len(fw.buf) {
		fw.iov = append(fw.iov, fw.buf[fw.mark:])
	}
	var err error
	if len(fw.iov) > 0 {
		v := fw.iov // WriteTo consumes v
		_, err = v.WriteTo(fw.w)
	}
	fw.reset(fw.w)
	return err
}

// directLimit: a payload at least this long is read straight from the
// connection into its own buffer, past the bufio.Reader, saving a copy.
const directLimit = 32 << 10

// readFrame reads one frame from r and returns its payload, in a buffer of
// its own that the caller owns. raw, if not nil, is the reader under r,
// used for long payloads once r's buffered bytes are consumed. A length above max fails with
// ErrFrameTooLarge before anything is allocated; a bad checksum fails with
// ErrChecksum. io.EOF means r ended cleanly between two frames;
// io.ErrUnexpectedEOF that it ended inside one.
func readFrame(r *bufio.Reader, raw io.Reader, max int) ([]byte, error) {
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
	src := io.Reader(r)
	k := 0
	if raw != nil && n >= directLimit {
		k = copy(msg, peekBuffered(r))
		if _, err := r.Discard(k); err != nil {
			return nil, err
		}
		src = raw
	}
	if _, err := io.ReadFull(src, msg[k:]); err != nil {
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

// peekBuffered returns r's buffered bytes without reading more.
func peekBuffered(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered()) // cannot fail: the bytes are there
	return b
}
