package wal

import (
	"fmt"
	"io/fs"
	"sync"
	"syscall"
)

// Op names a kind of FS operation, for FaultFS.
type Op uint16

// The operations FaultFS counts. OpAny matches them all.
const (
	OpCreate   Op = 1 << iota
	OpOpen        // Open and OpenReadWrite
	OpRead        // File.ReadAt
	OpWrite       // File.WriteAt
	OpSync        // File.Sync
	OpTruncate    // File.Truncate
	OpRemove
	OpRename
	OpMkdir
	OpReadDir
	OpSyncDir
	OpStat // FS.Stat and File.Size
	OpClose
	OpSyncFS // FSSyncer.SyncFS: a SyncGroup's flush

	OpAny Op = 1<<iota - 1
)

// Fault is an error FaultFS injects.
type Fault struct {
	// Ops are the kinds of operation counted; zero means OpAny.
	Ops Op
	// N: the Nth matching operation (0-based, counted from Inject) fails.
	N int
	// Sticky: every matching operation from the Nth on fails.
	Sticky bool
	// Err is the error returned (wrapped in a *fs.PathError); default EIO.
	Err error
	// Short: a failing write first writes half its bytes, as a write that
	// ran out of space would.
	Short bool
}

// FaultFS wraps an FS and fails chosen operations. It also counts every
// operation, so a test can run a scenario once, read Count, and then fail
// each operation in turn. Safe for concurrent use.
type FaultFS struct {
	inner FS
	mu    struct {
		sync.Mutex
		count  int // operations seen, all kinds
		faults []*armedFault
		fired  int
	}
}

type armedFault struct {
	Fault
	seen int
}

var (
	_ FS       = (*FaultFS)(nil)
	_ FSSyncer = (*FaultFS)(nil)
)

// NewFaultFS wraps inner.
func NewFaultFS(inner FS) *FaultFS { return &FaultFS{inner: inner} }

// Inject arms a fault.
func (f *FaultFS) Inject(fault Fault) {
	if fault.Ops == 0 {
		fault.Ops = OpAny
	}
	if fault.Err == nil {
		fault.Err = syscall.EIO
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.faults = append(f.mu.faults, &armedFault{Fault: fault})
}

// Reset disarms every fault.
func (f *FaultFS) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.faults = nil
}

// Count is the number of operations (of every kind) seen so far.
func (f *FaultFS) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.count
}

// Fired is the number of operations failed so far.
func (f *FaultFS) Fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.fired
}

// check counts an operation and returns the fault to inject, if any.
func (f *FaultFS) check(op Op) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.count++
	var hit *Fault
	for _, a := range f.mu.faults {
		if a.Ops&op == 0 {
			continue
		}
		n := a.seen
		a.seen++
		if n == a.N || (a.Sticky && n > a.N) {
			if hit == nil {
				hit = &a.Fault
			}
		}
	}
	if hit != nil {
		f.mu.fired++
	}
	return hit
}

func (f *FaultFS) err(op Op, name, opName string) error {
	if ft := f.check(op); ft != nil {
		return &fs.PathError{Op: opName, Path: name, Err: ft.Err}
	}
	return nil
}

// Create implements FS.
func (f *FaultFS) Create(name string) (File, error) {
	if err := f.err(OpCreate, name, "create"); err != nil {
		return nil, err
	}
	file, err := f.inner.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{fs: f, f: file, name: name}, nil
}

func (f *FaultFS) open(name string, rw bool) (File, error) {
	if err := f.err(OpOpen, name, "open"); err != nil {
		return nil, err
	}
	var file File
	var err error
	if rw {
		file, err = f.inner.OpenReadWrite(name)
	} else {
		file, err = f.inner.Open(name)
	}
	if err != nil {
		return nil, err
	}
	return &faultFile{fs: f, f: file, name: name}, nil
}

// Open implements FS.
func (f *FaultFS) Open(name string) (File, error) { return f.open(name, false) }

// OpenReadWrite implements FS.
func (f *FaultFS) OpenReadWrite(name string) (File, error) { return f.open(name, true) }

// Remove implements FS.
func (f *FaultFS) Remove(name string) error {
	if err := f.err(OpRemove, name, "remove"); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

// Rename implements FS.
func (f *FaultFS) Rename(oldname, newname string) error {
	if err := f.err(OpRename, oldname, "rename"); err != nil {
		return err
	}
	return f.inner.Rename(oldname, newname)
}

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(dir string) error {
	if err := f.err(OpMkdir, dir, "mkdir"); err != nil {
		return err
	}
	return f.inner.MkdirAll(dir)
}

// ReadDir implements FS.
func (f *FaultFS) ReadDir(dir string) ([]string, error) {
	if err := f.err(OpReadDir, dir, "readdir"); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

// SyncDir implements FS.
func (f *FaultFS) SyncDir(dir string) error {
	if err := f.err(OpSyncDir, dir, "syncdir"); err != nil {
		return err
	}
	return f.inner.SyncDir(dir)
}

// Stat implements FS.
func (f *FaultFS) Stat(name string) (int64, error) {
	if err := f.err(OpStat, name, "stat"); err != nil {
		return 0, err
	}
	return f.inner.Stat(name)
}

// SyncFS implements FSSyncer as one OpSyncFS operation: the inner FS's
// SyncFS, or a Sync of each inner file (not counted as OpSync) if the inner
// FS lacks it.
func (f *FaultFS) SyncFS(files []File) error {
	inner := make([]File, len(files))
	for i, file := range files {
		ff, ok := file.(*faultFile)
		if !ok || ff.fs != f {
			return &fs.PathError{Op: "syncfs", Path: fmt.Sprintf("%T", file), Err: fs.ErrInvalid}
		}
		inner[i] = ff.f
	}
	name := ""
	if len(files) > 0 {
		name = files[0].(*faultFile).name
	}
	if err := f.err(OpSyncFS, name, "syncfs"); err != nil {
		return err
	}
	return syncFiles(f.inner, inner)
}

type faultFile struct {
	fs   *FaultFS
	f    File
	name string
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.err(OpRead, f.name, "read"); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if ft := f.fs.check(OpWrite); ft != nil {
		n := 0
		if ft.Short && len(p) > 1 {
			var err error
			if n, err = f.f.WriteAt(p[:len(p)/2], off); err != nil {
				return n, err
			}
		}
		return n, &fs.PathError{Op: "write", Path: f.name, Err: ft.Err}
	}
	return f.f.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.err(OpSync, f.name, "sync"); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.err(OpTruncate, f.name, "truncate"); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *faultFile) Size() (int64, error) {
	if err := f.fs.err(OpStat, f.name, "stat"); err != nil {
		return 0, err
	}
	return f.f.Size()
}

func (f *faultFile) Close() error {
	err := f.f.Close()
	if ferr := f.fs.err(OpClose, f.name, "close"); ferr != nil {
		return ferr
	}
	return err
}
