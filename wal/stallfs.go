package wal

import (
	"fmt"
	"io/fs"
	"sync"
)

// StallFS wraps an FS and makes syncs (File.Sync, SyncDir and SyncFS) block
// while it is stalled, as a disk that stopped answering would. Syncs that
// block stay blocked until Release; nothing else is affected. Safe for
// concurrent use.
type StallFS struct {
	FS // the wrapped file system; every method but those below passes through
	st *stallState
}

// stallState is a StallFS's stall, shared with its incarnations.
type stallState struct {
	mu      sync.Mutex
	stalled bool
	release chan struct{} // closed by Release
	waiting int           // syncs blocked now
}

var (
	_ FS       = (*StallFS)(nil)
	_ FSSyncer = (*StallFS)(nil)
)

// NewStallFS wraps inner, not stalled.
func NewStallFS(inner FS) *StallFS { return &StallFS{FS: inner, st: &stallState{}} }

// Incarnation returns a StallFS over the wrapped FS's incarnation (see
// MemFS.Incarnation) that stalls with s: give each start of a node its
// own, as LocalCluster does, and stall them all through s. If the wrapped
// FS has no incarnations, it returns s.
func (s *StallFS) Incarnation() FS {
	inc, ok := s.FS.(interface{ Incarnation() FS })
	if !ok {
		return s
	}
	return &StallFS{FS: inc.Incarnation(), st: s.st}
}

// Stall makes every sync that starts from now on block until Release.
func (s *StallFS) Stall() {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if !s.st.stalled {
		s.st.stalled = true
		s.st.release = make(chan struct{})
	}
}

// Release unblocks the blocked syncs (they then run) and ends the stall.
func (s *StallFS) Release() {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.st.stalled {
		s.st.stalled = false
		close(s.st.release)
	}
}

// Waiting is the number of syncs blocked now.
func (s *StallFS) Waiting() int {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.waiting
}

// block waits while the FS is stalled.
func (s *StallFS) block() {
	s.st.mu.Lock()
	if !s.st.stalled {
		s.st.mu.Unlock()
		return
	}
	ch := s.st.release
	s.st.waiting++
	s.st.mu.Unlock()
	<-ch
	s.st.mu.Lock()
	s.st.waiting--
	s.st.mu.Unlock()
}

// SyncDir implements FS, blocking while stalled.
func (s *StallFS) SyncDir(dir string) error {
	s.block()
	return s.FS.SyncDir(dir)
}

// SyncFS implements FSSyncer, blocking while stalled (one blocked sync, for
// Waiting), then running the wrapped FS's SyncFS, or a Sync of each file if
// it lacks one.
func (s *StallFS) SyncFS(files []File) error {
	inner := make([]File, len(files))
	for i, file := range files {
		sf, ok := file.(*stallFile)
		if !ok || sf.fs != s {
			return &fs.PathError{Op: "syncfs", Path: fmt.Sprintf("%T", file), Err: fs.ErrInvalid}
		}
		inner[i] = sf.File
	}
	s.block()
	return syncFiles(s.FS, inner)
}

// Create implements FS.
func (s *StallFS) Create(name string) (File, error) { return s.wrap(s.FS.Create(name)) }

// Open implements FS.
func (s *StallFS) Open(name string) (File, error) { return s.wrap(s.FS.Open(name)) }

// OpenReadWrite implements FS.
func (s *StallFS) OpenReadWrite(name string) (File, error) { return s.wrap(s.FS.OpenReadWrite(name)) }

func (s *StallFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &stallFile{File: f, fs: s}, nil
}

type stallFile struct {
	File
	fs *StallFS
}

func (f *stallFile) Sync() error {
	f.fs.block()
	return f.File.Sync()
}
