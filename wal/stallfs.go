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
	mu struct {
		sync.Mutex
		stalled bool
		release chan struct{} // closed by Release
		waiting int           // syncs blocked now
	}
}

var (
	_ FS       = (*StallFS)(nil)
	_ FSSyncer = (*StallFS)(nil)
)

// NewStallFS wraps inner, not stalled.
func NewStallFS(inner FS) *StallFS { return &StallFS{FS: inner} }

// Stall makes every sync that starts from now on block until Release.
func (s *StallFS) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.stalled {
		s.mu.stalled = true
		s.mu.release = make(chan struct{})
	}
}

// Release unblocks the blocked syncs (they then run) and ends the stall.
func (s *StallFS) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.stalled {
		s.mu.stalled = false
		close(s.mu.release)
	}
}

// Waiting is the number of syncs blocked now.
func (s *StallFS) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.waiting
}

// block waits while the FS is stalled.
func (s *StallFS) block() {
	s.mu.Lock()
	if !s.mu.stalled {
		s.mu.Unlock()
		return
	}
	ch := s.mu.release
	s.mu.waiting++
	s.mu.Unlock()
	<-ch
	s.mu.Lock()
	s.mu.waiting--
	s.mu.Unlock()
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
