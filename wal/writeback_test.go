package wal

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// wbFS is a MemFS whose files record their WriteBack calls; block, when
// set, holds every WriteBack until closed; unsupported makes them answer
// errors.ErrUnsupported.
type wbFS struct {
	*MemFS
	mu          sync.Mutex
	calls       [][2]int64 // off, n
	block       chan struct{}
	unsupported bool
}

type wbFile struct {
	File
	fs *wbFS
}

func (w *wbFS) Create(name string) (File, error) {
	f, err := w.MemFS.Create(name)
	return wbFile{f, w}, err
}

func (w *wbFS) OpenReadWrite(name string) (File, error) {
	f, err := w.MemFS.OpenReadWrite(name)
	return wbFile{f, w}, err
}

func (f wbFile) WriteBack(off, n int64) error {
	f.fs.mu.Lock()
	f.fs.calls = append(f.fs.calls, [2]int64{off, n})
	block, unsupported := f.fs.block, f.fs.unsupported
	f.fs.mu.Unlock()
	if block != nil {
		<-block
	}
	if unsupported {
		return errors.ErrUnsupported
	}
	return nil
}

func (w *wbFS) recorded() [][2]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][2]int64(nil), w.calls...)
}

// appendFrames appends n frames of size bytes and waits for each to be
// written.
func appendFrames(t *testing.T, l *Log, n, size int) {
	t.Helper()
	payload := make([]byte, size)
	for range n {
		if _, err := l.Append(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteBackSteadyUnderSyncNever: a Log that does not sync its group
// commits (SyncNever, SyncInterval, or sharing a Journal) hands its written
// data to WriteBack in contiguous ranges of at least WriteBackBytes,
// starting after the segment header, restarting at each new segment, so
// that no sync ever has more than about WriteBackBytes left to write;
// under SyncAlways without a journal it never calls it.
func TestWriteBackSteadyUnderSyncNever(t *testing.T) {
	for _, c := range []struct {
		name    string
		d       Durability
		journal bool
	}{
		{"SyncNever", SyncNever, false},
		{"SyncInterval", SyncInterval, false},
		{"SyncAlways", SyncAlways, false},
		{"SyncAlways/journal", SyncAlways, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := c.d
			fsys := &wbFS{MemFS: NewMemFS()}
			const segSize = 3 * WriteBackBytes
			// No interval sync during the test: a sync leaves nothing to
			// write back, and the next range starts after it. The journal
			// lives in a plain MemFS, and checkpoints only past the test.
			opts := Options{FS: fsys, Dir: testDir, Durability: d, SegmentSize: segSize, SyncInterval: time.Hour}
			if c.journal {
				j, err := OpenJournal(JournalOptions{FS: NewMemFS(), Dir: journalDir, SegmentSize: 1 << 30})
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := j.Close(); err != nil {
						t.Error(err)
					}
				}()
				opts.Journal = j
			}
			l, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			const frame = 64 << 10
			appendFrames(t, l, 100, frame) // about 6.4 MB: three segments
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			calls := fsys.recorded()
			if d == SyncAlways && !c.journal {
				if len(calls) != 0 {
					t.Fatalf("SyncAlways wrote back %v", calls)
				}
				return
			}
			// Per segment, the ranges continue each other from the header.
			next := int64(SegmentHeaderSize)
			segments := 1
			for i, c := range calls {
				if c[0] != next {
					if c[0] != SegmentHeaderSize {
						t.Fatalf("call %d writes back from %d, want %d (or a new segment's %d): %v", i, c[0], next, SegmentHeaderSize, calls)
					}
					segments++
				}
				if c[1] < WriteBackBytes || c[1] > WriteBackBytes+FrameHeaderSize+frame {
					t.Fatalf("call %d writes back %d bytes, want WriteBackBytes (%d) up to one frame more", i, c[1], WriteBackBytes)
				}
				next = c[0] + c[1]
			}
			// Each 3 MB segment holds 47 frames of 64 KB: two calls each,
			// and the last segment (6 frames) none.
			if len(calls) != 4 || segments != 2 {
				t.Fatalf("%d calls over %d segments, want 4 over 2: %v", len(calls), segments, calls)
			}
		})
	}
}

// TestWriteBackUnsupportedAsksOnce: a file system that cannot write back
// is asked once; the Log goes on without it.
func TestWriteBackUnsupportedAsksOnce(t *testing.T) {
	fsys := &wbFS{MemFS: NewMemFS(), unsupported: true}
	l, err := Open(Options{FS: fsys, Dir: testDir, Durability: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	appendFrames(t, l, 64, 64<<10)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(fsys.recorded()); n != 1 {
		t.Fatalf("WriteBack called %d times, want 1", n)
	}
}

// TestWriteBackStallFailsLog: a WriteBack blocked past SyncTimeout fails
// the Log with ErrStorageStalled, as a blocked sync does.
func TestWriteBackStallFailsLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		fsys := &wbFS{MemFS: NewMemFS(), block: block}
		l, err := Open(Options{FS: fsys, Dir: testDir, Durability: SyncNever, SyncTimeout: stallTimeout})
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, 64<<10)
		ctx := context.Background()
		for range WriteBackBytes/len(payload) + 1 {
			if _, _, err := l.Enqueue(ctx, payload); err != nil {
				t.Fatal(err)
			}
		}
		<-l.failed
		if !errors.Is(l.Err(), ErrStorageStalled) {
			t.Fatalf("Err() = %v, want ErrStorageStalled", l.Err())
		}
		close(block)
		if err := l.Close(); !errors.Is(err, ErrStorageStalled) {
			t.Fatalf("Close = %v", err)
		}
	})
}

// TestWriteBackOSFS: OSFS files write back (Linux) or say they cannot.
func TestWriteBackOSFS(t *testing.T) {
	f, err := OSFS{}.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 1<<16), 0); err != nil {
		t.Fatal(err)
	}
	err = f.(WriteBacker).WriteBack(0, 1<<16)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("WriteBack = %v", err)
	}
}
