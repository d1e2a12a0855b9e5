package tcp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func encodeFrames(msgs ...[]byte) []byte {
	var buf bytes.Buffer
	w := newFrameWriter(0)
	w.reset(&buf)
	for _, m := range msgs {
		if err := w.add(m); err != nil {
			panic(err)
		}
	}
	if err := w.flush(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	var msgs [][]byte
	for _, n := range []int{0, 1, 11, 12, 13, 100, 4095, 4096, 70000} {
		m := make([]byte, n)
		for i := range m {
			m[i] = byte(i*7 + n)
		}
		msgs = append(msgs, m)
	}
	data := encodeFrames(msgs...)
	for _, direct := range []bool{false, true} {
		br := bytes.NewReader(data)
		r := bufio.NewReaderSize(br, 4096)
		var raw io.Reader
		if direct {
			raw = br
		}
		for i, want := range msgs {
			got, err := readFrame(r, raw, 70000)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("direct %v, frame %d: err %v, equal %v", direct, i, err, bytes.Equal(got, want))
			}
		}
		if _, err := readFrame(r, raw, 70000); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	good := encodeFrames([]byte("hello, world"))
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		data []byte
		max  int
		want error
	}{
		{"torn header", good[:5], 100, io.ErrUnexpectedEOF},
		{"torn payload", good[:len(good)-1], 100, io.ErrUnexpectedEOF},
		{"flipped bit", flipped, 100, ErrChecksum},
		{"over the limit", good, 11, ErrFrameTooLarge},
	} {
		_, err := readFrame(bufio.NewReader(bytes.NewReader(tc.data)), nil, tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestOversizeFrameNotAllocated: a header announcing 4 GiB costs nothing
// but the error.
func TestOversizeFrameNotAllocated(t *testing.T) {
	var h [frameHeaderSize]byte
	binary.BigEndian.PutUint32(h[:], 1<<32-1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		r := bufio.NewReaderSize(bytes.NewReader(h[:]), 16)
		if _, err := readFrame(r, nil, 1<<20); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("100 oversize headers allocated %d bytes", d)
	}
}

// FuzzReadFrame: any input decodes to frames within the limit whose
// checksums hold, or to an error; never a panic, never an oversize buffer.
func FuzzReadFrame(f *testing.F) {
	f.Add(encodeFrames([]byte("a"), []byte("bc"), nil))
	f.Add(encodeFrames(make([]byte, 300)))
	f.Add(encodeFrames(make([]byte, directLimit+5), []byte("x")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 1, 2, 3})
	f.Add([]byte{})
	const limit = 2 * directLimit
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bytes.NewReader(data)
		r := bufio.NewReaderSize(br, 16)
		var raw io.Reader
		if len(data)%2 == 0 {
			raw = br // long payloads bypass r
		}
		for range len(data)/frameHeaderSize + 1 {
			msg, err := readFrame(r, raw, limit)
			if err != nil {
				return
			}
			if len(msg) > limit {
				t.Fatalf("frame of %d bytes above the limit %d", len(msg), limit)
			}
			_ = xxhash.Sum64(msg)
		}
		if _, err := readFrame(r, raw, limit); err == nil {
			t.Fatal("more frames than the input can hold")
		}
	})
}

// FuzzDecodeHello: a hello that decodes re-encodes to the same bytes, and
// the checks on it never panic.
func FuzzDecodeHello(f *testing.F) {
	f.Add(hello{version: protocolVersion, cluster: 7, from: 1, to: 2}.encode())
	f.Add(hello{version: 9, status: statusUnknownNode, cluster: 1 << 63, from: 3, to: 1}.encode())
	f.Add([]byte("RPLG"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHello(data)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("error %v is not ErrHandshake", err)
			}
			return
		}
		if !bytes.Equal(h.encode(), data[:helloSize]) {
			t.Fatal("hello does not re-encode to its bytes")
		}
		s := checkDialler(h, 2, 7, func(id uint64) bool { return id == 1 })
		ok := h.version == protocolVersion && h.cluster == 7 && h.from == 1 && h.to == 2
		if (s == statusOK) != ok {
			t.Fatalf("hello %+v: status %s", h, statusText(s))
		}
		_ = checkAcceptor(h, 1, 2, 7)
	})
}
