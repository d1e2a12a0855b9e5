package wal

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// dirTrackFS records the directories MkdirAll created whose entries no
// SyncDir of their parent has made durable since.
type dirTrackFS struct {
	*MemFS
	mu       sync.Mutex
	unsynced map[string]bool
}

func (d *dirTrackFS) MkdirAll(dir string) error {
	var missing []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := d.MemFS.ReadDir(p); err != nil {
			missing = append(missing, p)
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := d.MemFS.MkdirAll(dir); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range missing {
		d.unsynced[p] = true
	}
	return nil
}

func (d *dirTrackFS) SyncDir(dir string) error {
	d.mu.Lock()
	for p := range d.unsynced {
		if filepath.Dir(p) == filepath.Clean(dir) {
			delete(d.unsynced, p)
		}
	}
	d.mu.Unlock()
	return d.MemFS.SyncDir(dir)
}

func (d *dirTrackFS) left() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var l []string
	for p := range d.unsynced {
		l = append(l, p)
	}
	slices.Sort(l)
	return l
}

// A Log opened in a new directory makes the directory's entry (and its
// new parents') durable before it acknowledges anything: else a power
// failure could take the directory, every acknowledged frame with it.
func TestOpenMakesNewDirectoriesDurable(t *testing.T) {
	fsys := &dirTrackFS{MemFS: NewMemFS(), unsynced: map[string]bool{}}
	if err := fsys.MemFS.MkdirAll("/node"); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{FS: fsys, Dir: "/node/partitions/p0"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), []byte("acked")); err != nil {
		t.Fatal(err)
	}
	if left := fsys.left(); len(left) > 0 {
		t.Fatalf("frame acknowledged while the entries of the new directories %v were never synced", left)
	}
	// An existing directory, and a relative path.
	if err := MkdirAll(fsys, "/node/partitions/p0"); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(fsys, "rel/a"); err != nil {
		t.Fatal(err)
	}
	if left := fsys.left(); len(left) > 0 {
		t.Fatalf("MkdirAll of a relative path left %v unsynced", left)
	}
}
