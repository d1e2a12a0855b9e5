package tcp

import (
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
// maxIovecs keeps one writev under the kernel's IOV_MAX of 1024, and
// maxWriteBytes bounds one writev, so that a write deadline set per flush
// means something even for a burst of large messages.
const (
	copyLimit     = 4 << 10
	maxIovecs     = 512
	maxWriteBytes = 4 << 20
)

// frameWriter writes a burst of frames in as few system calls as it can:
// headers and small messages go into one buffer, large messages are
// referenced, and flush hands the lot to one writev (net.Buffers).
type frameWriter struct {
	w    io.Writer
	buf  []byte      // headers and small messages; its capacity never grows
	iov  net.Buffers // slices of buf and large messages, in order
	mark int         // buf[mark:] is not in iov yet
	big  int         // bytes of large messages in iov

	// beforeWrite, if set, runs before each system call, e.g. to set a
	// write deadline.
	beforeWrite func() error
}

func newFrameWriter(size int) *frameWriter {
	return &frameWriter{buf: make([]byte, 0, max(size, frameHeaderSize+copyLimit))}
}

// reset discards anything pending and writes to w from now on.
func (fw *frameWriter) reset(w io.Writer) {
	fw.w = w
	clear(fw.iov)
	fw.iov, fw.buf, fw.mark, fw.big = fw.iov[:0], fw.buf[:0], 0, 0
}

// add appends msg as one frame, flushing first if the buffer is full. msg
// must stay untouched until the next flush.
func (fw *frameWriter) add(msg []byte) error {
	small := len(msg) <= copyLimit
	need := frameHeaderSize
	if small {
		need += len(msg)
	}
	if len(fw.buf)+need > cap(fw.buf) || len(fw.iov) >= maxIovecs-2 ||
		(!small && fw.big > 0 && fw.big+len(msg) > maxWriteBytes) {
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
	fw.big += len(msg)
	return nil
}

// flush writes everything added since the last flush.
func (fw *frameWriter) flush() error {
	if fw.mark < len(fw.buf) {
		fw.iov = append(fw.iov, fw.buf[fw.mark:])
	}
	var err error
	if len(fw.iov) > 0 && fw.beforeWrite != nil {
		err = fw.beforeWrite()
	}
	if len(fw.iov) > 0 && err == nil {
		v := fw.iov // WriteTo consumes v
		_, err = v.WriteTo(fw.w)
	}
	fw.reset(fw.w)
	return err
}

// frameReader decodes frames from a connection. Short frames come out of
// its buffer, many per read; the tail of a long payload (directLimit or
// more) is read straight into the message's own buffer, and the read after
// it is kept short (smallFill), so that the next long payload is not
// copied through the buffer either.
type frameReader struct {
	r      io.Reader
	buf    []byte
	lo, hi int  // buf[lo:hi] is read but not decoded
	small  bool // the last payload was long: keep the next fill short
}

const (
	directLimit = 32 << 10
	smallFill   = 4 << 10
)

func newFrameReader(r io.Reader, size int) *frameReader {
	return &frameReader{r: r, buf: make([]byte, max(size, frameHeaderSize, smallFill))}
}

// fill reads more into the buffer, after moving what is left to its start.
func (fr *frameReader) fill() error {
	if fr.lo > 0 {
		fr.hi = copy(fr.buf, fr.buf[fr.lo:fr.hi])
		fr.lo = 0
	}
	end := len(fr.buf)
	if fr.small {
		end = min(end, max(fr.hi+frameHeaderSize, smallFill))
	}
	n, err := fr.r.Read(fr.buf[fr.hi:end])
	fr.hi += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// next reads one frame and returns its payload, in a buffer of its own
// that the caller owns. A length above max fails with ErrFrameTooLarge
// before anything is allocated; a bad checksum fails with ErrChecksum.
// io.EOF means the stream ended cleanly between two frames,
// io.ErrUnexpectedEOF that it ended inside one.
func (fr *frameReader) next(max int) ([]byte, error) {
	for fr.hi-fr.lo < frameHeaderSize {
		if err := fr.fill(); err != nil {
			if err == io.EOF && fr.hi > fr.lo {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	h := fr.buf[fr.lo : fr.lo+frameHeaderSize]
	n := int(binary.BigEndian.Uint32(h[0:4]))
	sum := binary.BigEndian.Uint64(h[4:12])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	fr.lo += frameHeaderSize
	msg := make([]byte, n)
	k := copy(msg, fr.buf[fr.lo:fr.hi])
	fr.lo += k
	fr.small = n >= directLimit
	if k < n && n-k >= directLimit {
		if _, err := io.ReadFull(fr.r, msg[k:]); err != nil {
			return nil, unexpected(err)
		}
		k = n
	}
	for k < n {
		if err := fr.fill(); err != nil {
			return nil, unexpected(err)
		}
		c := copy(msg[k:], fr.buf[fr.lo:fr.hi])
		fr.lo += c
		k += c
	}
	if xxhash.Sum64(msg) != sum {
		return nil, ErrChecksum
	}
	return msg, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
