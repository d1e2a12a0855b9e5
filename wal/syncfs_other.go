//go:build !linux

package wal

import "os"

// syncfsFiles syncs each of files where the OS has no syncfs(2).
func syncfsFiles(files []*os.File) error {
	for _, f := range files {
		if err := fdatasync(f); err != nil {
			return err
		}
	}
	return nil
}
