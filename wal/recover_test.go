package wal

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// rawRead returns a file's bytes.
func rawRead(t testing.TB, fsys FS, name string) []byte {
	t.Helper()
	b, err := ReadFile(fsys, join(testDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawWrite replaces a file's bytes, durably.
func rawWrite(t testing.TB, fsys FS, name string, b []byte) {
	t.Helper()
	f, err := fsys.OpenReadWrite(join(testDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// buildLog writes n frames with payloadOf, closes cleanly and returns their
// positions and the segment names.
func buildLog(t testing.TB, m *MemFS, n int, segSize int64) ([]Pos, []string) {
	t.Helper()
	l, err := Open(Options{FS: m, Dir: testDir, SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	var pos []Pos
	for i := range n {
		p, err := l.Append(context.Background(), payloadOf(i))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := m.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, name := range names {
		if _, ok := parseSegmentName(name); ok {
			segs = append(segs, name)
		}
	}
	return pos, segs
}

// dropMarker removes the clean-shutdown marker, as a crash would have.
func dropMarker(t testing.TB, m *MemFS) {
	t.Helper()
	if err := m.Remove(join(testDir, cleanName)); err != nil {
		t.Fatal(err)
	}
}

// fileOffset is the offset of the frame at p in the segment starting at s.
func fileOffset(p Pos, seg string) int64 {
	s, _ := parseSegmentName(seg)
	return SegmentHeaderSize + int64(p-s)
}

func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(frame []byte) []byte
	}{
		{"zeroes", func([]byte) []byte { return make([]byte, 100) }},
		{"short header", func(f []byte) []byte { return f[:7] }},
		{"short payload", func(f []byte) []byte { return f[:len(f)-1] }},
		{"garbage", func([]byte) []byte { return bytes.Repeat([]byte{0x5A}, 33) }},
		{"bad payload", func(f []byte) []byte { c := bytes.Clone(f); c[len(c)-1] ^= 1; return c }},
		{"frame for another position", func(f []byte) []byte { return appendFrame(nil, 3, []byte("abc"), xxhashSum([]byte("abc"))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemFS()
			pos, segs := buildLog(t, m, 30, 4096)
			dropMarker(t, m)
			last := segs[len(segs)-1]
			b := rawRead(t, m, last)
			end := pos[29] + Pos(frameSize(len(payloadOf(29))))
			next := appendFrame(nil, end, []byte("the torn frame"), xxhashSum([]byte("the torn frame")))
			rawWrite(t, m, last, append(b, tc.tail(next)...))
			l := openT(t, m, nil)
			if l.WrittenEnd() != end {
				t.Fatalf("end %d after recovery, want %d", l.WrittenEnd(), end)
			}
			if got := len(readAll(t, l, 0)); got != 30 {
				t.Fatalf("%d frames, want 30", got)
			}
			if p, err := l.Append(context.Background(), []byte("next")); err != nil || p != end {
				t.Fatalf("Append after recovery = %d, %v", p, err)
			}
		})
	}
}

func TestRecoverCorruptionBeforeTail(t *testing.T) {
	m := NewMemFS()
	pos, segs := buildLog(t, m, 30, 1<<20)
	dropMarker(t, m)
	seg := segs[0]
	b := rawRead(t, m, seg)
	off := fileOffset(pos[10], seg)
	b[off+FrameHeaderSize] ^= 0x40 // a payload byte of frame 10
	rawWrite(t, m, seg, b)
	_, err := Open(Options{FS: m, Dir: testDir})
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want a *CorruptError", err)
	}
	if ce.Segment != seg || ce.Offset != off {
		t.Fatalf("corruption reported at %s:%d, want %s:%d", ce.Segment, ce.Offset, seg, off)
	}
	// Under SyncNever the damage counts as a lost unsynced tail.
	l := openT(t, m, func(o *Options) { o.Durability = SyncNever })
	if l.WrittenEnd() != pos[10] {
		t.Fatalf("SyncNever recovery ends at %d, want %d", l.WrittenEnd(), pos[10])
	}
}

func TestCleanOpenDoesNotScan(t *testing.T) {
	m := NewMemFS()
	pos, segs := buildLog(t, m, 60, 1<<20)
	if len(segs) != 1 {
		t.Fatalf("want one segment, got %v", segs)
	}
	// Damage a frame in the middle; a clean Open must not notice (it does
	// not read the frames), a read must.
	b := rawRead(t, m, segs[0])
	off := fileOffset(pos[30], segs[0])
	b[off+FrameHeaderSize] ^= 1
	rawWrite(t, m, segs[0], b)
	ffs := NewFaultFS(m)
	l := openT(t, ffs, nil)
	if ffs.Count() > 20 {
		t.Fatalf("clean Open used %d FS operations", ffs.Count())
	}
	if _, _, err := l.ReadAt(pos[30], nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadAt(damaged) = %v", err)
	}
	r, _ := l.NewReader(pos[29])
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := r.Next(); !errors.As(err, &ce) || ce.Offset != off {
		t.Fatalf("Reader at damage = %v", err)
	}
	// The marker is gone: the next Open (a crash, no Close) scans and fails.
	m.Crash(CrashOptions{})
	if _, err := Open(Options{FS: m, Dir: testDir}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open after crash = %v, want ErrCorrupt", err)
	}
}

func TestSealedSegmentsAreNotScanned(t *testing.T) {
	m := NewMemFS()
	pos, segs := buildLog(t, m, 100, 1024)
	dropMarker(t, m)
	seg := segs[1]
	start, _ := parseSegmentName(seg)
	i := 0
	for pos[i] < start {
		i++
	}
	b := rawRead(t, m, seg)
	b[fileOffset(pos[i], seg)+FrameHeaderSize+1] ^= 1
	rawWrite(t, m, seg, b)
	l := openT(t, m, nil)
	if _, _, err := l.ReadAt(pos[i], nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadAt(damaged frame of a sealed segment) = %v", err)
	}
}

func TestRecoverSegmentSetErrors(t *testing.T) {
	t.Run("gap", func(t *testing.T) {
		m := NewMemFS()
		_, segs := buildLog(t, m, 100, 1024)
		if err := m.Remove(join(testDir, segs[2])); err != nil {
			t.Fatal(err)
		}
		var ce *CorruptError
		if _, err := Open(Options{FS: m, Dir: testDir}); !errors.As(err, &ce) || ce.Segment != segs[1] {
			t.Fatalf("Open with a missing segment = %v", err)
		}
	})
	t.Run("bad sealed header", func(t *testing.T) {
		m := NewMemFS()
		_, segs := buildLog(t, m, 100, 1024)
		b := rawRead(t, m, segs[1])
		b[0] = 'X'
		rawWrite(t, m, segs[1], b)
		if _, err := Open(Options{FS: m, Dir: testDir}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("torn new segment header", func(t *testing.T) {
		m := NewMemFS()
		pos, segs := buildLog(t, m, 10, 1<<20)
		dropMarker(t, m)
		end := pos[9] + Pos(frameSize(len(payloadOf(9))))
		if len(segs) != 1 {
			t.Fatal(segs)
		}
		f, _ := m.Create(join(testDir, segmentName(end)))
		h := segmentHeader(end)
		_, _ = f.WriteAt(h[:10], 0)
		_ = f.Sync()
		_ = f.Close()
		l := openT(t, m, nil)
		if l.WrittenEnd() != end || len(readAll(t, l, 0)) != 10 {
			t.Fatalf("end %d, want %d", l.WrittenEnd(), end)
		}
		if p, err := l.Append(context.Background(), []byte("x")); err != nil || p != end {
			t.Fatalf("Append = %d, %v", p, err)
		}
	})
}

// FuzzRecover cuts the last segment of a valid log at some offset and
// appends arbitrary bytes. Open must not panic; it either reports
// corruption or recovers every frame that lay wholly before the cut, with
// dense positions and no read errors.
func FuzzRecover(f *testing.F) {
	f.Add(uint16(0), []byte{})
	f.Add(uint16(500), make([]byte, 64))
	f.Add(uint16(1000), []byte("garbage garbage garbage garbage"))
	f.Add(uint16(24), []byte{1, 0, 0, 0, 3, 0, 0, 0})
	f.Add(uint16(65535), []byte{0xff})
	base := NewMemFS()
	pos, segs := buildLog(f, base, 40, 1<<20)
	content := rawRead(f, base, segs[0])
	f.Fuzz(func(t *testing.T, cut uint16, tail []byte) {
		c := min(int(cut), len(content))
		m := NewMemFS()
		_ = m.MkdirAll(testDir)
		file, _ := m.Create(join(testDir, segs[0]))
		_ = file.Close()
		rawWrite(t, m, segs[0], append(bytes.Clone(content[:c]), tail...))
		_ = m.SyncDir(testDir)
		l, err := Open(Options{FS: m, Dir: testDir})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v; want success or ErrCorrupt", err)
			}
			return
		}
		defer l.Close()
		frames := readAll(t, l, 0)
		kept := 0
		for i, p := range pos {
			if fileOffset(p, segs[0])+frameSize(len(payloadOf(i))) <= int64(c) {
				kept++
			}
		}
		if len(frames) < kept {
			t.Fatalf("recovered %d frames, %d lay before the cut", len(frames), kept)
		}
		for i := range kept {
			if frames[i].Pos != pos[i] || !bytes.Equal(frames[i].Payload, payloadOf(i)) {
				t.Fatalf("frame %d differs", i)
			}
		}
		next := Pos(0)
		for _, fr := range frames {
			if fr.Pos != next {
				t.Fatalf("hole at %d", next)
			}
			next = fr.Next
		}
		if next != l.WrittenEnd() {
			t.Fatalf("frames end at %d, log at %d", next, l.WrittenEnd())
		}
	})
}
