package tcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

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
	for _, size := range []int{0, 4096, 100000} {
		r := newFrameReader(bytes.NewReader(data), size)
		for i, want := range msgs {
			got, err := r.next(70000)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("buffer %d, frame %d: err %v, equal %v", size, i, err, bytes.Equal(got, want))
			}
		}
		if _, err := r.next(70000); err != io.EOF {
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
		_, err := newFrameReader(bytes.NewReader(tc.data), 0).next(tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestOversizeFrameNotAllocated: a header announcing 4 GiB costs nothing
// but the error (and the reader's own buffer).
func TestOversizeFrameNotAllocated(t *testing.T) {
	var h [frameHeaderSize]byte
	binary.BigEndian.PutUint32(h[:], 1<<32-1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		r := newFrameReader(bytes.NewReader(h[:]), 16)
		if _, err := r.next(1 << 20); !errors.Is(err, ErrFrameTooLarge) {
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
		r := newFrameReader(iotest.OneByteReader(bytes.NewReader(data)), len(data)%5000)
		if len(data)%2 == 0 {
			r = newFrameReader(bytes.NewReader(data), len(data)%5000)
		}
		for range len(data)/frameHeaderSize + 1 {
			msg, err := r.next(limit)
			if err != nil {
				return
			}
			if len(msg) > limit {
				t.Fatalf("frame of %d bytes above the limit %d", len(msg), limit)
			}
			_ = xxhash.Sum64(msg)
		}
		if _, err := r.next(limit); err == nil {
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

func TestCheckDialler(t *testing.T) {
	known := func(id uint64) bool { return id == 1 || id == 9 }
	ok := hello{version: protocolVersion, cluster: 7, from: 1, to: 5}
	for _, tc := range []struct {
		name string
		mod  func(h *hello)
		want uint16
	}{
		{"ok", func(*hello) {}, statusOK},
		{"version", func(h *hello) { h.version = 2 }, statusBadVersion},
		{"cluster", func(h *hello) { h.cluster = 8 }, statusWrongCluster},
		{"meant for another node", func(h *hello) { h.to = 6 }, statusWrongNode},
		{"unknown dialler", func(h *hello) { h.from = 2 }, statusUnknownNode},
		{"higher ID dials", func(h *hello) { h.from = 9 }, statusWrongDirection},
	} {
		h := ok
		tc.mod(&h)
		if got := checkDialler(h, 5, 7, known); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, statusText(got), statusText(tc.want))
		}
	}
	reply := hello{version: protocolVersion, cluster: 7, from: 5, to: 1}
	if err := checkAcceptor(reply, 1, 5, 7); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []hello{
		{version: protocolVersion, status: statusUnknownNode, cluster: 7, from: 5, to: 1},
		{version: protocolVersion, cluster: 8, from: 5, to: 1},
		{version: protocolVersion, cluster: 7, from: 6, to: 1},
		{version: 3, cluster: 7, from: 5, to: 1},
	} {
		if err := checkAcceptor(bad, 1, 5, 7); !errors.Is(err, ErrHandshake) {
			t.Errorf("answer %+v accepted: %v", bad, err)
		}
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// TestFrameWriterSplitsBursts: a burst larger than one writev allows is
// split, every piece preceded by beforeWrite, and decodes back in order.
func TestFrameWriterSplitsBursts(t *testing.T) {
	var msgs [][]byte
	for i := range 600 {
		n := []int{10, copyLimit + 1, 64 << 10}[i%3]
		m := make([]byte, n)
		binary.BigEndian.PutUint32(m, uint32(i))
		msgs = append(msgs, m)
	}
	var w countingWriter
	fw := newFrameWriter(64 << 10)
	fw.reset(&w)
	calls := 0
	fw.beforeWrite = func() error { calls++; return nil }
	for _, m := range msgs {
		if err := fw.add(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.flush(); err != nil {
		t.Fatal(err)
	}
	// 200 large messages of 64 KiB: more than 3 writes of maxWriteBytes,
	// and 400 iovecs for large messages alone.
	if calls < 4 {
		t.Fatalf("%d flushes for a burst of %d bytes", calls, w.Len())
	}
	r := newFrameReader(&w.Buffer, 0)
	for i, want := range msgs {
		got, err := r.next(1 << 20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	fw.beforeWrite = func() error { return errors.New("deadline") }
	if err := fw.add(msgs[0]); err != nil {
		t.Fatal(err)
	}
	if err := fw.flush(); err == nil || err.Error() != "deadline" {
		t.Fatalf("flush ignored beforeWrite's error: %v", err)
	}
}
