package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// FS is every file operation the wal (and the packages built on it) need.
// Names are paths as filepath builds them. Implementations: OSFS, MemFS,
// FaultFS, StallFS. All methods are safe for concurrent use.
type FS interface {
	// Create creates the named file for reading and writing, truncating it
	// if it exists. The new directory entry is durable only after SyncDir
	// of its directory.
	Create(name string) (File, error)
	// Open opens an existing file for reading.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing file for reading and writing.
	OpenReadWrite(name string) (File, error)
	// Remove removes the named file; durable after SyncDir.
	Remove(name string) error
	// Rename renames a file, replacing newname if it exists; durable after
	// SyncDir of the directory.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents; durable after SyncDir
	// of each parent that gained an entry (see the function MkdirAll).
	MkdirAll(dir string) error
	// ReadDir returns the names of the entries of dir, sorted.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes the directory's entries (creates, renames, removes)
	// durable.
	SyncDir(dir string) error
	// Stat returns the size of the named file. A missing file gives an
	// error matching fs.ErrNotExist.
	Stat(name string) (int64, error)
}

// File is an open file of an FS. ReadAt may be called concurrently with any
// method but Close; WriteAt and Truncate are called by one goroutine at a
// time. Sync may run concurrently with WriteAt, Truncate and other Syncs (a
// Journal's checkpoint syncs a segment while its Log goes on writing); it
// makes durable at least what was written before it was called.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes the file's data durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	// Close closes the file.
	Close() error
}

// WriteBacker is a File that can start writing a range of its data to the
// device without waiting for it and without making it durable (on Linux,
// sync_file_range(2) with SYNC_FILE_RANGE_WRITE). OSFS files implement it.
//
// A Log whose group commits do not sync its segment (Durability SyncNever
// or SyncInterval, or a Log sharing a Journal) calls it every
// WriteBackBytes it writes, so that dirty data never piles up: the sync of
// a roll, a checkpoint or Close then finds little left to write, instead
// of a whole segment, which under load can take longer than SyncTimeout
// and fail the Log with ErrStorageStalled although the disk works; and the
// device writes steadily instead of in bursts (with a Journal, a
// checkpoint's burst slowed the journal's own syncs: p99.9 of the
// replication benchmark 340 ms without write-back, 110 ms with it). A Log
// whose File does not implement it, or returns errors.ErrUnsupported,
// leaves write-back to the operating system.
type WriteBacker interface {
	// WriteBack starts writing the dirty data in [off, off+n) to the
	// device. It may return before the data reaches it, and makes nothing
	// durable. errors.ErrUnsupported: the file system cannot.
	WriteBack(off, n int64) error
}

// WriteBackBytes is how many bytes a Log writes between two WriteBack
// calls on its active segment (see WriteBacker).
const WriteBackBytes = 1 << 20

// OSFS is the operating system's file system. The zero value is ready to use.
type OSFS struct{}

var (
	_ FS       = OSFS{}
	_ FSSyncer = OSFS{}
)

// Create implements FS.
func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Open implements FS.
func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// OpenReadWrite implements FS.
func (OSFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// SyncFS implements FSSyncer. On Linux it calls syncfs(2) once for each
// file system that holds one of files: every dirty file of that file system
// is written back, other programs' too. Elsewhere it syncs each file. The
// files must come from OSFS.
func (OSFS) SyncFS(files []File) error {
	osFiles := make([]*os.File, len(files))
	for i, f := range files {
		of, ok := f.(osFile)
		if !ok {
			return fmt.Errorf("wal: OSFS.SyncFS: %T is not an OSFS file", f)
		}
		osFiles[i] = of.f
	}
	return syncfsFiles(osFiles)
}

// Stat implements FS.
func (OSFS) Stat(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

type osFile struct{ f *os.File }

func (o osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Sync() error                              { return fdatasync(o.f) }
func (o osFile) WriteBack(off, n int64) error             { return writeBack(o.f, off, n) }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o osFile) Close() error                             { return o.f.Close() }
func (o osFile) Size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// join is filepath.Join, named for brevity at call sites.
func join(dir, name string) string { return filepath.Join(dir, name) }
