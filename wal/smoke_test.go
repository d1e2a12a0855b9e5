package wal

import (
	"context"
	"fmt"
	"io"
	"testing"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	m := NewMemFS()
	l, err := Open(Options{FS: m, Dir: "/w", SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	var ps []Pos
	for i := 0; i < 20; i++ {
		p, err := l.Append(ctx, []byte(fmt.Sprintf("hello %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		b, _, err := l.ReadAt(p, nil)
		if err != nil || string(b) != fmt.Sprintf("hello %d", i) {
			t.Fatal(i, string(b), err)
		}
	}
	r, _ := l.NewReader(0)
	n := 0
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Payload) != fmt.Sprintf("hello %d", n) {
			t.Fatal(n, string(f.Payload))
		}
		n++
	}
	r.Close()
	if n != 20 {
		t.Fatal(n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := m.ReadDir("/w")
	t.Log(names)
	l, err = Open(Options{FS: m, Dir: "/w", SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if l.WrittenEnd() != ps[19]+Pos(frameSize(len("hello 19"))) {
		t.Fatal(l.WrittenEnd())
	}
	m.Crash(CrashOptions{})
	l.Close()
	l, err = Open(Options{FS: m, Dir: "/w", SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(l.WrittenEnd(), l.Start())
	if err := l.TruncateAfter(ctx, ps[5]); err != nil {
		t.Fatal(err)
	}
	t.Log(l.WrittenEnd())
	p, err := l.Append(ctx, []byte("x"))
	if err != nil || p != ps[5] {
		t.Fatal(p, err)
	}
	s, err := l.DeleteBefore(ps[4])
	t.Log(s, err)
	l.Close()
}
