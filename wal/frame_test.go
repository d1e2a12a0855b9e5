package wal

import (
	"bytes"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pos     Pos
		payload string
	}{
		{0, ""},
		{0, "a"},
		{12345, "hello, world"},
		{1 << 40, string(bytes.Repeat([]byte{0xAB}, 70000))},
	} {
		b := appendFrame(nil, tc.pos, []byte(tc.payload), xxhashSum([]byte(tc.payload)))
		if len(b) != int(frameSize(len(tc.payload))) {
			t.Fatalf("pos %d: frame is %d bytes, want %d", tc.pos, len(b), frameSize(len(tc.payload)))
		}
		got, size, short, err := decodeFrame(b, tc.pos)
		if err != nil || short || size != len(b) || string(got) != tc.payload {
			t.Fatalf("pos %d: decode = %q, %d, %v, %v", tc.pos, got, size, short, err)
		}
		// The same bytes at another position are not a frame.
		if _, _, _, err := decodeFrame(b, tc.pos+1); err == nil {
			t.Fatalf("pos %d: frame decoded at pos+1", tc.pos)
		}
		// Every truncation is short; every single bit flip is rejected.
		for n := 0; n < len(b) && n < 64; n++ {
			if _, _, short, err := decodeFrame(b[:n], tc.pos); err == nil || !short {
				t.Fatalf("pos %d: %d-byte prefix: short=%v err=%v", tc.pos, n, short, err)
			}
		}
		for i := 0; i < len(b) && i < 64; i++ {
			for bit := 0; bit < 8; bit++ {
				c := bytes.Clone(b)
				c[i] ^= 1 << bit
				if _, _, _, err := decodeFrame(c, tc.pos); err == nil {
					t.Fatalf("pos %d: flip of byte %d bit %d accepted", tc.pos, i, bit)
				}
			}
		}
	}
}

func TestZeroesAreNeverAFrame(t *testing.T) {
	zero := make([]byte, 4096)
	for pos := Pos(0); pos < 100000; pos++ {
		if _, _, ok := decodeHeader(zero, pos); ok {
			t.Fatalf("zeroed header accepted at pos %d", pos)
		}
	}
}

func TestSegmentNames(t *testing.T) {
	for _, p := range []Pos{0, 1, 67108864, 1<<63 - 1} {
		name := segmentName(p)
		got, ok := parseSegmentName(name)
		if !ok || got != p {
			t.Fatalf("parse(%q) = %d, %v; want %d", name, got, ok, p)
		}
	}
	for _, bad := range []string{"", "clean", "0000000000000000000a.wal", "00000000000000000000.tmp",
		"99999999999999999999.wal", "0000000000000000000.wal"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Fatalf("parse(%q) accepted", bad)
		}
	}
}

func TestSegmentHeader(t *testing.T) {
	h := segmentHeader(42)
	if err := checkSegmentHeader(h[:], 42); err != nil {
		t.Fatal(err)
	}
	if err := checkSegmentHeader(h[:], 43); err == nil {
		t.Fatal("header of segment 42 accepted for 43")
	}
	if err := checkSegmentHeader(make([]byte, SegmentHeaderSize), 0); err == nil {
		t.Fatal("zeroed segment header accepted")
	}
}

// FuzzDecodeFrame checks that the decoder never panics, that what it accepts
// re-encodes to the same bytes, and that a size it reports fits the input.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte{}, int64(0))
	f.Add(make([]byte, 32), int64(0))
	f.Add(appendFrame(nil, 0, []byte("x"), xxhashSum([]byte("x"))), int64(0))
	f.Add(appendFrame(nil, 77, []byte("hello"), xxhashSum([]byte("hello"))), int64(77))
	f.Add(appendFrame(nil, 77, nil, xxhashSum(nil)), int64(77))
	f.Fuzz(func(t *testing.T, b []byte, pos int64) {
		payload, size, short, err := decodeFrame(b, Pos(pos))
		if err != nil {
			if payload != nil || size != 0 {
				t.Fatalf("error %v with payload %q size %d", err, payload, size)
			}
			_ = short
			return
		}
		if size > len(b) || size != FrameHeaderSize+len(payload) {
			t.Fatalf("size %d for %d input bytes, payload %d", size, len(b), len(payload))
		}
		again := appendFrame(nil, Pos(pos), payload, xxhashSum(payload))
		if !bytes.Equal(again, b[:size]) {
			t.Fatalf("accepted frame does not re-encode to its bytes")
		}
	})
}
