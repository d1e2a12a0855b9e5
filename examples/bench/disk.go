package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/replog/replog/wal"
)

// diskCase is one shape of synced writes -disk measures: files written
// and synced concurrently, each by its own goroutine, write then sync, with
// writes of size bytes.
type diskCase struct {
	Files int `json:"files"`
	Size  int `json:"write_bytes"`
}

// diskCases are the shapes -disk measures. A replog node under SyncAlways
// syncs one file per partition replica (18 in the default bench: 6
// partitions × RF 3 in one process) or, with Config.Journal, one per node
// (3); how much a sync carries depends on the records in flight per file.
var diskCases = []diskCase{
	{1, 4 << 10}, {1, 64 << 10},
	{3, 4 << 10}, {3, 16 << 10}, {3, 64 << 10},
	{18, 4 << 10}, {18, 16 << 10}, {18, 64 << 10},
}

// diskResult is what one case measured.
type diskResult struct {
	diskCase
	SyncsPerSec float64 `json:"syncs_per_sec"`
	MsPerSync   float64 `json:"ms_per_sync"` // per file: write and sync
	MBPerSec    float64 `json:"mb_per_sec"`
}

// runDisk measures the disk under dir the way SyncAlways uses it, with
// replog's own file and sync calls (wal.OSFS: fdatasync on Linux): what
// the hardware allows the replication bench, whatever replog does. Each
// case runs for duration divided among the cases (at least 50 ms).
func runDisk(ctx context.Context, dir string, duration time.Duration, w io.Writer, asJSON bool) error {
	tmp, err := os.MkdirTemp(dir, "replog-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	each := max(duration/time.Duration(len(diskCases)), 50*time.Millisecond)
	var results []diskResult
	for i, c := range diskCases {
		if ctx.Err() != nil {
			break
		}
		r, err := diskRun(ctx, filepath.Join(tmp, fmt.Sprint(i)), c, each)
		if err != nil {
			return err
		}
		results = append(results, r)
		if !asJSON {
			fmt.Fprintf(w, "%2d files, writes of %3d KiB then sync: %6.0f syncs/s, %5.2f ms each, %6.1f MB/s\n",
				c.Files, c.Size>>10, r.SyncsPerSec, r.MsPerSync, r.MBPerSec)
		}
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			Mode    string       `json:"mode"`
			Results []diskResult `json:"results"`
		}{"disk", results})
	}
	return nil
}

// diskRun runs one case for d.
func diskRun(ctx context.Context, dir string, c diskCase, d time.Duration) (diskResult, error) {
	fsys := wal.OSFS{}
	if err := fsys.MkdirAll(dir); err != nil {
		return diskResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	syncs := make([]int, c.Files)
	errs := make([]error, c.Files)
	start := time.Now()
	for i := range c.Files {
		wg.Go(func() {
			syncs[i], errs[i] = diskWriter(ctx, fsys, filepath.Join(dir, fmt.Sprint(i)), c.Size)
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	total := 0
	for i := range c.Files {
		if errs[i] != nil {
			return diskResult{}, errs[i]
		}
		total += syncs[i]
	}
	r := diskResult{diskCase: c, SyncsPerSec: float64(total) / secs, MBPerSec: float64(total) * float64(c.Size) / secs / 1e6}
	if total > 0 {
		r.MsPerSync = secs * 1000 * float64(c.Files) / float64(total)
	}
	return r, nil
}

// diskWriter appends size bytes to its file and syncs, until ctx ends;
// it returns the syncs done. Like a log segment, the file grows with each
// write (a sync then commits its new size too); it is emptied every 64
// MiB, so that a long run does not fill the disk.
func diskWriter(ctx context.Context, fsys wal.FS, name string, size int) (int, error) {
	f, err := fsys.Create(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, size)
	var off int64
	n := 0
	for ctx.Err() == nil {
		if _, err := f.WriteAt(buf, off); err != nil {
			return n, err
		}
		if err := f.Sync(); err != nil {
			return n, err
		}
		n++
		if off += int64(size); off >= 64<<20 {
			if err := f.Truncate(0); err != nil {
				return n, err
			}
			off = 0
		}
	}
	return n, nil
}
