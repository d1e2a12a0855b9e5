package wal

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/synctest"
)

func TestMemFSCrashKeepsOnlySynced(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/a/b"); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string, sync bool) File {
		f, err := m.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(data), 0); err != nil {
			t.Fatal(err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	write("/a/synced-entry", "durable", true)
	if err := m.SyncDir("/a"); err != nil {
		t.Fatal(err)
	}
	old := write("/a/unsynced-entry", "lost: the directory was not synced", true)
	f := write("/a/b/x", "abc", true)
	if err := m.SyncDir("/a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("defg"), 3); err != nil { // unsynced
		t.Fatal(err)
	}
	if err := m.Rename("/a/synced-entry", "/a/renamed"); err != nil { // unsynced
		t.Fatal(err)
	}
	m.Crash(CrashOptions{})
	names, _ := m.ReadDir("/a")
	if !slices.Equal(names, []string{"b", "synced-entry"}) {
		t.Fatalf("after crash /a holds %v", names)
	}
	if b, err := ReadFile(m, "/a/b/x"); err != nil || string(b) != "abc" {
		t.Fatalf("/a/b/x = %q, %v", b, err)
	}
	if _, err := old.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("handle from before the crash: %v", err)
	}
	// Torn: part of the unsynced tail may survive, garbage possibly.
	g := write("/a/b/t", "0123456789", true)
	if err := m.SyncDir("/a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt([]byte("abcdefghijklmnop"), 10); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for seed := range uint64(200) {
		// Each crash starts from the same state: rebuild it.
		h, _ := m.OpenReadWrite("/a/b/t")
		_ = h.Truncate(10)
		_ = h.Sync()
		_, _ = h.WriteAt([]byte("abcdefghijklmnop"), 10)
		_ = h.Close()
		m.Crash(CrashOptions{Torn: true, Seed: seed})
		b, _ := ReadFile(m, "/a/b/t")
		if len(b) < 10 || len(b) > 26 || string(b[:10]) != "0123456789" {
			t.Fatalf("seed %d: torn file %q", seed, b)
		}
		seen[len(b)] = true
	}
	if len(seen) < 5 {
		t.Fatalf("torn crashes kept only lengths %v", seen)
	}
}

func TestMemFSDirectories(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/d/e"); err != nil {
		t.Fatal(err)
	}
	f, _ := m.Create("/d/e/f")
	_ = f.Close()
	if err := m.Remove("/d/e"); err == nil {
		t.Fatal("removed a directory that is not empty")
	}
	if err := m.Remove("/d/e/f"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/d/e"); err != nil {
		t.Fatal(err)
	}
	if names, _ := m.ReadDir("/d"); len(names) != 0 {
		t.Fatalf("/d holds %v", names)
	}
	if _, err := m.Create("/d/e/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in a removed directory: %v", err)
	}
	if _, err := m.Stat("/d/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a missing file: %v", err)
	}
}

// TestMemFSIncarnationEndsAtCrash: an incarnation works on the MemFS until
// the next Crash, then fails every operation with ErrCrashed, so a crashed
// run's late segment roll (create, sync, rename, sync the directory) does
// not reach the state the next run finds; a new incarnation and the MemFS
// itself go on.
func TestMemFSIncarnationEndsAtCrash(t *testing.T) {
	m := NewMemFS()
	run1 := m.Incarnation()
	if err := run1.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	f, err := run1.Create("/d/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := run1.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	m.Crash(CrashOptions{})

	ops := map[string]func() error{
		"Create":        func() error { _, err := run1.Create("/d/b"); return err },
		"Open":          func() error { _, err := run1.Open("/d/a"); return err },
		"OpenReadWrite": func() error { _, err := run1.OpenReadWrite("/d/a"); return err },
		"Remove":        func() error { return run1.Remove("/d/a") },
		"Rename":        func() error { return run1.Rename("/d/a", "/d/c") },
		"MkdirAll":      func() error { return run1.MkdirAll("/e") },
		"ReadDir":       func() error { _, err := run1.ReadDir("/d"); return err },
		"SyncDir":       func() error { return run1.SyncDir("/d") },
		"Stat":          func() error { _, err := run1.Stat("/d/a"); return err },
		"SyncFS":        func() error { return run1.(FSSyncer).SyncFS(nil) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrCrashed) {
			t.Errorf("%s of the crashed incarnation = %v, want ErrCrashed", name, err)
		}
	}

	run2 := m.Incarnation()
	for _, fsys := range []FS{run2, m} {
		names, err := fsys.ReadDir("/d")
		if err != nil || !slices.Equal(names, []string{"a"}) {
			t.Fatalf("after the crash: /d holds %v, %v; want [a]", names, err)
		}
		if size, err := fsys.Stat("/d/a"); err != nil || size != 1 {
			t.Fatalf("after the crash: /d/a has %d bytes, %v", size, err)
		}
	}
	if _, err := run2.Create("/d/b"); err != nil {
		t.Fatalf("Create in a new incarnation: %v", err)
	}
}

// TestStallFSIncarnation: a StallFS's incarnation works on the wrapped
// MemFS's incarnation (a Crash ends it) and stalls with the StallFS.
func TestStallFSIncarnation(t *testing.T) {
	m := NewMemFS()
	s := NewStallFS(m)
	run := s.Incarnation()
	f, err := run.Create("/a")
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		s.Stall()
		done := make(chan error, 1)
		go func() { done <- f.Sync() }()
		synctest.Wait()
		if s.Waiting() != 1 {
			t.Fatalf("%d syncs blocked through the incarnation, want 1", s.Waiting())
		}
		s.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	m.Crash(CrashOptions{})
	if _, err := run.Create("/b"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("Create through the crashed incarnation = %v, want ErrCrashed", err)
	}
	if _, err := s.Incarnation().Create("/b"); err != nil {
		t.Fatalf("Create through a new incarnation: %v", err)
	}
	if NewStallFS(OSFS{}).Incarnation() == nil {
		t.Fatal("no FS for a file system without incarnations")
	}
}
