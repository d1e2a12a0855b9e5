//go:build !linux

package wal

import "os"

// fdatasync is fsync where the OS has no cheaper data-only sync.
func fdatasync(f *os.File) error { return f.Sync() }
