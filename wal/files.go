package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// WriteFileAtomic replaces the named file with data, durably and atomically:
// it writes name+".tmp", syncs it, renames it over name and syncs the
// directory. After a crash the file holds either the old or the new data;
// a leftover name+".tmp" may remain, and the caller may remove it. It has
// no deadline of its own: a stalled FS blocks it.
func WriteFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("wal: write %s: %w", name, err)
	}
	n, err := f.WriteAt(data, 0)
	if err == nil && n < len(data) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(data))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err != nil {
		// The temporary file is garbage either way; its removal error would
		// hide the one that matters.
		_ = fsys.Remove(tmp)
		return fmt.Errorf("wal: write %s: %w", name, err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("wal: write %s: sync dir: %w", name, err)
	}
	return nil
}

// ReadFile returns the whole content of the named file. A missing file gives
// an error matching fs.ErrNotExist.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("wal: read %s: %w", name, err)
	}
	size, err := f.Size()
	if err == nil {
		b := make([]byte, size)
		var n int
		n, err = f.ReadAt(b, 0)
		if errors.Is(err, io.EOF) && int64(n) == size {
			err = nil
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			return b, nil
		}
	} else {
		_ = f.Close() // the Size error is the one to report
	}
	return nil, fmt.Errorf("wal: read %s: %w", name, err)
}

// MkdirAll creates dir and its missing parents durably: once it returns,
// a crash keeps them (FS.MkdirAll alone promises nothing about crashes on
// an OS file system: a new directory's entry lives in its parent, which
// must be synced). Each parent that gained an entry is synced, from the
// deepest up. Directories that existed are not synced again.
func MkdirAll(fsys FS, dir string) error {
	var created []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := fsys.ReadDir(p); err == nil {
			break
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("wal: create %s: %w", dir, err)
	}
	for _, p := range created {
		if parent := filepath.Dir(p); parent != p {
			if err := fsys.SyncDir(parent); err != nil {
				return fmt.Errorf("wal: create %s: sync %s: %w", dir, parent, err)
			}
		}
	}
	return nil
}
