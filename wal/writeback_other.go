//go:build !linux

package wal

import (
	"errors"
	"os"
)

// writeBack has no portable equivalent: the sync at a roll or Close writes
// everything.
func writeBack(*os.File, int64, int64) error { return errors.ErrUnsupported }
