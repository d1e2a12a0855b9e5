package wal

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// writeBack starts writing f's dirty pages in [off, off+n) to the device
// (sync_file_range(2), SYNC_FILE_RANGE_WRITE): no wait for the writes, no
// metadata, no device flush. A file system without it reports
// errors.ErrUnsupported.
func writeBack(f *os.File, off, n int64) error {
	for {
		err := unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ESPIPE):
			return errors.ErrUnsupported
		default:
			return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
		}
	}
}
