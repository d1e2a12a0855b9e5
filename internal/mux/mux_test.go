package mux

import (
	"errors"
	"sync"
	"testing"

	"github.com/replog/replog/transport"
)

// loop is a Transport that delivers every Send to its own handler at once.
type loop struct {
	mu sync.Mutex
	h  transport.Handler
}

func (l *loop) Start(h transport.Handler) error { l.h = h; return nil }
func (l *loop) Send(to uint64, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h(to, msg)
	return nil
}
func (l *loop) Close() error { return nil }

func TestMuxRoutesByTag(t *testing.T) {
	var tr loop
	m := New(&tr)
	got := map[Tag][]string{}
	for _, tag := range []Tag{TagRaft, TagReplication} {
		if err := m.Handle(tag, func(from uint64, msg []byte) {
			got[tag] = append(got[tag], string(msg))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Handle(TagRaft, func(uint64, []byte) {}); err == nil {
		t.Fatal("second handler for one tag accepted")
	}
	if err := m.Handle(0, func(uint64, []byte) {}); err == nil {
		t.Fatal("tag 0 accepted")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Handle(TagForward, func(uint64, []byte) {}); !errors.Is(err, ErrStarted) {
		t.Fatalf("Handle after Start: %v", err)
	}
	send := func(tag Tag, s string) {
		if err := m.Sender(tag).Send(7, append(Frame(len(s)), s...)); err != nil {
			t.Fatal(err)
		}
	}
	send(TagRaft, "a")
	send(TagReplication, "b")
	send(TagRaft, "c")
	send(TagForward, "lost") // no handler
	_ = tr.Send(7, nil)      // empty
	_ = tr.Send(7, []byte{200, 1})
	if g := got[TagRaft]; len(g) != 2 || g[0] != "a" || g[1] != "c" {
		t.Fatalf("raft got %q", g)
	}
	if g := got[TagReplication]; len(g) != 1 || g[0] != "b" {
		t.Fatalf("replication got %q", g)
	}
	if d := m.Dropped(); d != 3 {
		t.Fatalf("dropped %d, want 3", d)
	}
	if err := m.Sender(TagRaft).Send(1, nil); err == nil {
		t.Fatal("Send of an empty message accepted")
	}
}
