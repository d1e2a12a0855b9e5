package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
)

const testDir = "/data/wal"

// openT opens a Log on fsys with small segments and closes it at cleanup.
func openT(t testing.TB, fsys FS, mod func(*Options)) *Log {
	t.Helper()
	opts := Options{FS: fsys, Dir: testDir, SegmentSize: 1024}
	if mod != nil {
		mod(&opts)
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		_ = l.Close() // tests that care close it themselves and check
		<-l.Done()
	})
	return l
}

func payloadOf(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("<%d>", i)), i%50)
}

// readAll reads every frame from pos with a Reader.
func readAll(t testing.TB, l *Log, from Pos) []Frame {
	t.Helper()
	r, err := l.NewReader(from)
	if err != nil {
		t.Fatalf("NewReader(%d): %v", from, err)
	}
	defer r.Close()
	var out []Frame
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next at %d: %v", r.Pos(), err)
		}
		f.Payload = bytes.Clone(f.Payload)
		out = append(out, f)
	}
}

func TestAppendReadReopen(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l := openT(t, m, nil)
	var pos []Pos
	next := Pos(0)
	for i := range 200 {
		p, err := l.Append(ctx, payloadOf(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if p != next {
			t.Fatalf("Append %d at %d, want %d", i, p, next)
		}
		next = p + Pos(frameSize(len(payloadOf(i))))
		pos = append(pos, p)
	}
	if l.WrittenEnd() != next || l.DurableEnd() != next || l.NextPos() != next {
		t.Fatalf("ends %d/%d/%d, want %d", l.WrittenEnd(), l.DurableEnd(), l.NextPos(), next)
	}
	check := func(l *Log) {
		t.Helper()
		var buf []byte
		for i, p := range pos {
			var n Pos
			var err error
			buf, n, err = l.ReadAt(p, buf)
			if err != nil || !bytes.Equal(buf, payloadOf(i)) {
				t.Fatalf("ReadAt(%d) = %q, %v", p, buf, err)
			}
			if i+1 < len(pos) && n != pos[i+1] {
				t.Fatalf("ReadAt(%d) next %d, want %d", p, n, pos[i+1])
			}
		}
		frames := readAll(t, l, 0)
		if len(frames) != len(pos) {
			t.Fatalf("reader got %d frames, want %d", len(frames), len(pos))
		}
		for i, f := range frames {
			if f.Pos != pos[i] || !bytes.Equal(f.Payload, payloadOf(i)) {
				t.Fatalf("frame %d: %d %q", i, f.Pos, f.Payload)
			}
		}
		mid := readAll(t, l, pos[117])
		if len(mid) != len(pos)-117 || mid[0].Pos != pos[117] {
			t.Fatalf("reader from %d: %d frames", pos[117], len(mid))
		}
	}
	check(l)
	names, _ := m.ReadDir(testDir)
	if len(names) < 5 {
		t.Fatalf("expected several segments with SegmentSize 1024, got %v", names)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, err := l.Append(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	l2 := openT(t, m, nil)
	if l2.WrittenEnd() != next || l2.Start() != 0 {
		t.Fatalf("reopened: end %d start %d, want %d 0", l2.WrittenEnd(), l2.Start(), next)
	}
	check(l2)
	if p, err := l2.Append(ctx, []byte("after")); err != nil || p != next {
		t.Fatalf("Append after reopen = %d, %v; want %d", p, err, next)
	}
}

func TestReadErrors(t *testing.T) {
	ctx := context.Background()
	l := openT(t, NewMemFS(), nil)
	p, _ := l.Append(ctx, []byte("hello"))
	if _, _, err := l.ReadAt(l.WrittenEnd(), nil); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadAt(end) = %v", err)
	}
	if _, _, err := l.ReadAt(-1, nil); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadAt(-1) = %v", err)
	}
	if _, _, err := l.ReadAt(p+1, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadAt(not a boundary) = %v", err)
	}
	if _, err := l.NewReader(l.WrittenEnd() + 1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("NewReader(past end) = %v", err)
	}
	if _, err := l.Append(ctx, make([]byte, DefaultMaxFrameSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Append(too large) = %v", err)
	}
}

func TestEmptyAndLargeFrames(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l := openT(t, m, func(o *Options) { o.MaxPending = 1000 })
	sizes := []int{0, 5000, 0, 1, 3000, 70000, 2}
	var pos []Pos
	for i, n := range sizes {
		p, err := l.Append(ctx, bytes.Repeat([]byte{byte(i + 1)}, n))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	for pass := range 2 {
		frames := readAll(t, l, 0)
		if len(frames) != len(sizes) {
			t.Fatalf("pass %d: %d frames", pass, len(frames))
		}
		for i, f := range frames {
			if f.Pos != pos[i] || !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte(i + 1)}, sizes[i])) {
				t.Fatalf("pass %d: frame %d wrong (%d bytes at %d)", pass, i, len(f.Payload), f.Pos)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openT(t, m, nil)
	}
}

func TestConcurrentAppendersGroupCommit(t *testing.T) {
	ctx := context.Background()
	l := openT(t, NewMemFS(), func(o *Options) { o.SegmentSize = 64 << 10 })
	const writers, each = 16, 100
	var mu sync.Mutex
	got := map[Pos]string{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				s := fmt.Sprintf("w%d-%d", w, i)
				p, err := l.Append(ctx, []byte(s))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[p] = s
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	frames := readAll(t, l, 0)
	if len(frames) != writers*each || len(got) != writers*each {
		t.Fatalf("%d frames, %d positions; want %d", len(frames), len(got), writers*each)
	}
	for _, f := range frames {
		if got[f.Pos] != string(f.Payload) {
			t.Fatalf("frame at %d is %q, appender got %q", f.Pos, f.Payload, got[f.Pos])
		}
	}
	if s := l.Stats(); s.Syncs > writers*each {
		t.Fatalf("%d syncs for %d appends", s.Syncs, writers*each)
	}
}

func TestEnqueueOrderAndWait(t *testing.T) {
	ctx := context.Background()
	l := openT(t, NewMemFS(), nil)
	var last Pos
	var ends []Pos
	for i := range 10 {
		p, end, err := l.Enqueue(ctx, payloadOf(i))
		if err != nil {
			t.Fatal(err)
		}
		if p != last {
			t.Fatalf("Enqueue %d at %d, want %d", i, p, last)
		}
		last = end
		ends = append(ends, end)
	}
	if err := l.Wait(ctx, ends[9]); err != nil {
		t.Fatal(err)
	}
	if l.DurableEnd() < ends[9] {
		t.Fatalf("Wait returned before durable: %d < %d", l.DurableEnd(), ends[9])
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(cctx, ends[9]+1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with canceled ctx = %v", err)
	}
}

func TestSyncNeverAndSync(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l := openT(t, m, func(o *Options) { o.Durability = SyncNever; o.SegmentSize = 1 << 20 })
	for i := range 10 {
		if _, err := l.Append(ctx, payloadOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	if l.DurableEnd() != 0 {
		t.Fatalf("SyncNever synced: durable %d", l.DurableEnd())
	}
	mark := l.WrittenEnd()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if l.DurableEnd() != mark {
		t.Fatalf("after Sync durable %d, want %d", l.DurableEnd(), mark)
	}
	if _, err := l.Append(ctx, []byte("lost")); err != nil {
		t.Fatal(err)
	}
	m.Crash(CrashOptions{})
	l2 := openT(t, m, nil)
	if l2.WrittenEnd() != mark {
		t.Fatalf("after crash end %d, want the synced %d", l2.WrittenEnd(), mark)
	}
}

func TestTruncateAfter(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l := openT(t, m, nil)
	var pos []Pos
	for i := range 100 {
		p, err := l.Append(ctx, payloadOf(i))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	r, _ := l.NewReader(pos[90])
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateAfter(ctx, pos[40]+1); !errors.Is(err, ErrNotFrameBoundary) {
		t.Fatalf("TruncateAfter(not a boundary) = %v", err)
	}
	if err := l.TruncateAfter(ctx, l.NextPos()+1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("TruncateAfter(past end) = %v", err)
	}
	for _, cut := range []int{80, 41, 40} {
		if err := l.TruncateAfter(ctx, pos[cut]); err != nil {
			t.Fatalf("TruncateAfter(%d): %v", pos[cut], err)
		}
		if l.WrittenEnd() != pos[cut] || l.NextPos() != pos[cut] || l.DurableEnd() != pos[cut] {
			t.Fatalf("ends %d/%d/%d after truncating to %d", l.WrittenEnd(), l.NextPos(), l.DurableEnd(), pos[cut])
		}
		if got := len(readAll(t, l, 0)); got != cut {
			t.Fatalf("%d frames after truncating to frame %d", got, cut)
		}
	}
	if _, err := r.Next(); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("reader past the truncation: %v", err)
	}
	p, err := l.Append(ctx, []byte("new"))
	if err != nil || p != pos[40] {
		t.Fatalf("Append after truncate at %d, %v; want %d", p, err, pos[40])
	}
	m.Crash(CrashOptions{})
	l2 := openT(t, m, nil)
	frames := readAll(t, l2, 0)
	if len(frames) != 41 || string(frames[40].Payload) != "new" {
		t.Fatalf("after crash: %d frames", len(frames))
	}
	if err := l2.TruncateAfter(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if l2.WrittenEnd() != 0 || len(readAll(t, l2, 0)) != 0 {
		t.Fatalf("truncate to 0 left end %d", l2.WrittenEnd())
	}
}

func TestDeleteBefore(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l := openT(t, m, nil)
	var pos []Pos
	for i := range 100 {
		p, err := l.Append(ctx, payloadOf(i))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	r, _ := l.NewReader(0)
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	start, err := l.DeleteBefore(pos[50])
	if err != nil {
		t.Fatal(err)
	}
	if start <= 0 || start > pos[50] || l.Start() != start {
		t.Fatalf("start %d (Start %d) after DeleteBefore(%d)", start, l.Start(), pos[50])
	}
	if _, _, err := l.ReadAt(0, nil); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("ReadAt(0) after delete = %v", err)
	}
	frames := readAll(t, l, start)
	if frames[len(frames)-1].Pos != pos[99] {
		t.Fatal("frames lost after DeleteBefore")
	}
	if _, err := l.DeleteBefore(l.NextPos() + 100); err != nil {
		t.Fatal(err)
	}
	names, _ := m.ReadDir(testDir)
	if len(names) != 1 {
		t.Fatalf("the active segment alone must remain, got %v", names)
	}
	m.Crash(CrashOptions{})
	l2 := openT(t, m, nil)
	if l2.Start() != l.Start() || l2.WrittenEnd() != pos[99]+Pos(frameSize(len(payloadOf(99)))) {
		t.Fatalf("after crash start %d end %d", l2.Start(), l2.WrittenEnd())
	}
}

func TestWriteFileAtomic(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(m, "/d/f"); err == nil {
		t.Fatal("ReadFile of a missing file succeeded")
	}
	for _, v := range []string{"one", "two", ""} {
		if err := WriteFileAtomic(m, "/d/f", []byte(v)); err != nil {
			t.Fatal(err)
		}
		m.Crash(CrashOptions{Torn: true, Seed: 1})
		b, err := ReadFile(m, "/d/f")
		if err != nil || string(b) != v {
			t.Fatalf("after crash: %q, %v; want %q", b, err, v)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{},
		{Dir: "x", SegmentSize: 10},
		{Dir: "x", Durability: 7},
		{Dir: "x", MaxFrameSize: -1},
		{Dir: "x", SyncTimeout: -1},
	} {
		if _, err := Open(o); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("Open(%+v) = %v", o, err)
		}
	}
}

// TestReaderTailsAppends reads frames while they are appended across many
// segment rolls and while retention deletes old segments behind the reader.
func TestReaderTailsAppends(t *testing.T) {
	ctx := context.Background()
	l := openT(t, NewMemFS(), func(o *Options) { o.SegmentSize = 512 })
	const n = 2000
	var readAt atomic.Int64 // the reader's position: retention stays behind it
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if _, err := l.Append(ctx, payloadOf(i)); err != nil {
				t.Error(err)
				return
			}
			if i%100 == 99 {
				if _, err := l.DeleteBefore(Pos(readAt.Load())); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < n; {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			if err := l.Wait(ctx, r.Pos()+1); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Payload, payloadOf(i)) {
			t.Fatalf("frame %d at %d: %q", i, f.Pos, f.Payload)
		}
		readAt.Store(int64(f.Pos))
		i++
	}
	wg.Wait()
	if l.Start() == 0 {
		t.Fatal("retention deleted nothing")
	}
}

// A Reader given its own read-ahead buffer reads what one with the
// default does, frames larger than that buffer included, in reads of at
// most the buffer's size otherwise.
func TestReaderBuffer(t *testing.T) {
	ctx := context.Background()
	l := openT(t, NewMemFS(), nil)
	var want [][]byte
	for i := range 120 {
		p := payloadOf(i)
		if i%40 == 7 {
			p = bytes.Repeat([]byte{byte(i)}, 3000) // larger than the buffer
		}
		if _, err := l.Append(ctx, p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	for _, size := range []int{0, 64, 1000} {
		r, err := l.NewReaderBuffer(l.Start(), make([]byte, 0, size))
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			f, err := r.Next()
			if err != nil || !bytes.Equal(f.Payload, want[i]) {
				t.Fatalf("buffer %d, frame %d: %q, %v; want %q", size, i, f.Payload, err, want[i])
			}
			if len(f.Payload) < 100 && cap(r.buf) > max(size, FrameHeaderSize, 3000+FrameHeaderSize) {
				t.Fatalf("buffer %d grew to %d", size, cap(r.buf))
			}
		}
		if _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("buffer %d: after the last frame: %v", size, err)
		}
		r.Close()
	}
}

// A frame whose length field is damaged is corrupt to a Reader, found
// without fetching what the damaged length claims (up to the segment's
// end): the header's checksum covers the length.
func TestReaderDamagedLength(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l := openT(t, m, func(o *Options) { o.SegmentSize = 8 << 20 })
	var pos []Pos
	for i := range 20 {
		p, err := l.Append(ctx, payloadOf(i))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	// Pad the segment, so that a damaged length could point far.
	if _, err := l.Append(ctx, make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	names, err := m.ReadDir(testDir)
	if err != nil || len(names) == 0 {
		t.Fatalf("segments: %v, %v", names, err)
	}
	f, err := m.OpenReadWrite(testDir + "/" + names[0])
	if err != nil {
		t.Fatal(err)
	}
	var length [4]byte
	binary.LittleEndian.PutUint32(length[:], 3<<20)
	if _, err := f.WriteAt(length[:], SegmentHeaderSize+int64(pos[10])); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := l.NewReaderBuffer(l.Start(), make([]byte, 0, 512))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 10 {
		if f, err := r.Next(); err != nil || f.Pos != pos[i] {
			t.Fatalf("frame %d: at %d, %v", i, f.Pos, err)
		}
	}
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged frame: %v, want ErrCorrupt", err)
	}
	if cap(r.buf) > 64<<10 {
		t.Fatalf("read %d bytes ahead for a damaged frame", cap(r.buf))
	}
}
