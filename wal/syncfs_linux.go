package wal

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfsFiles flushes, with syncfs(2), each file system that holds one of
// files: once per file system (told apart by st_dev), however many files.
// syncfs reports writeback errors of the whole file system since Linux 5.8.
func syncfsFiles(files []*os.File) error {
	var devs []uint64 // few: usually one
	for _, f := range files {
		fd := int(f.Fd())
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
		}
		dev := uint64(st.Dev)
		seen := false
		for _, d := range devs {
			seen = seen || d == dev
		}
		if seen {
			continue
		}
		devs = append(devs, dev)
		if err := syncfs(f); err != nil {
			return err
		}
	}
	return nil
}

func syncfs(f *os.File) error {
	for {
		err := unix.Syncfs(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "syncfs", Path: f.Name(), Err: err}
		}
		return nil
	}
}
