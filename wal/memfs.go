package wal

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// MemFS is an in-memory FS that simulates crashes: Crash keeps only what a
// real disk would guarantee, the bytes of each file as of its last Sync and
// the file entries of each directory as of its last SyncDir. Directories
// themselves are simpler: MkdirAll and Remove of an empty directory are
// durable at once. ReadDir lists files and subdirectories, like the OS.
// Safe for concurrent use.
type MemFS struct {
	mu struct {
		sync.Mutex
		dirs    map[string]*memDir
		dirty   map[*memInode]struct{} // inodes whose data may differ from synced
		epoch   int                    // bumped by Crash; older handles fail
		crashes int
	}
}

var (
	_ FS       = (*MemFS)(nil)
	_ FSSyncer = (*MemFS)(nil)
)

type memDir struct {
	live    map[string]*memInode // current entries
	durable map[string]*memInode // entries as of the last SyncDir
}

type memInode struct {
	data   []byte // current content
	synced []byte // content as of the last Sync
}

// NewMemFS returns an empty MemFS whose root directory "/" (and ".") exist.
func NewMemFS() *MemFS {
	m := &MemFS{}
	m.mu.dirs = map[string]*memDir{}
	m.mu.dirty = map[*memInode]struct{}{}
	m.mkdirLocked("/")
	m.mkdirLocked(".")
	return m
}

func (m *MemFS) mkdirLocked(dir string) {
	dir = filepath.Clean(dir)
	for {
		if _, ok := m.mu.dirs[dir]; !ok {
			m.mu.dirs[dir] = &memDir{live: map[string]*memInode{}, durable: map[string]*memInode{}}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
}

// lookupLocked splits name into its directory and base name.
func (m *MemFS) lookupLocked(op, name string) (*memDir, string, error) {
	name = filepath.Clean(name)
	d, ok := m.mu.dirs[filepath.Dir(name)]
	if !ok {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return d, filepath.Base(name), nil
}

// anyEpoch is the epoch of an operation on the MemFS itself, which no
// Crash ends.
const anyEpoch = -1

// lock takes m's lock for an operation of the incarnation that began at
// epoch (see Incarnation), or fails it with ErrCrashed if a Crash has
// ended that incarnation.
func (m *MemFS) lock(op, name string, epoch int) error {
	m.mu.Lock()
	if epoch != anyEpoch && epoch != m.mu.epoch {
		m.mu.Unlock()
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

// Incarnation returns the MemFS as one run of a process sees it: an FS
// (and FSSyncer) that works on m until m's next Crash, and fails every
// operation with ErrCrashed after it. Give each start of a node its own
// incarnation, so that what the crashed run's goroutines still do (roll a
// segment, rename a file, sync a directory) cannot land in the state the
// next run finds, as no process outlives a power failure.
func (m *MemFS) Incarnation() FS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return memIncarnation{m: m, epoch: m.mu.epoch}
}

// memIncarnation is a MemFS until the Crash that ends epoch.
type memIncarnation struct {
	m     *MemFS
	epoch int
}

var (
	_ FS       = memIncarnation{}
	_ FSSyncer = memIncarnation{}
)

func (v memIncarnation) Create(name string) (File, error) { return v.m.create(name, v.epoch) }
func (v memIncarnation) Open(name string) (File, error)   { return v.m.open(name, false, v.epoch) }
func (v memIncarnation) OpenReadWrite(name string) (File, error) {
	return v.m.open(name, true, v.epoch)
}
func (v memIncarnation) Remove(name string) error { return v.m.remove(name, v.epoch) }
func (v memIncarnation) Rename(oldname, newname string) error {
	return v.m.rename(oldname, newname, v.epoch)
}
func (v memIncarnation) MkdirAll(dir string) error            { return v.m.mkdirAll(dir, v.epoch) }
func (v memIncarnation) ReadDir(dir string) ([]string, error) { return v.m.readDir(dir, v.epoch) }
func (v memIncarnation) SyncDir(dir string) error             { return v.m.syncDir(dir, v.epoch) }
func (v memIncarnation) Stat(name string) (int64, error)      { return v.m.stat(name, v.epoch) }
func (v memIncarnation) SyncFS(files []File) error            { return v.m.syncFS(files, v.epoch) }

// CrashOptions shape a simulated crash.
type CrashOptions struct {
	// Torn, when set, lets part of each file's unsynced appended tail
	// survive, as a disk that persisted some pages of the last write would:
	// a random prefix of the unsynced bytes is kept, and its last bytes may
	// be replaced by zeroes or garbage.
	Torn bool
	// Seed makes the torn tails deterministic.
	Seed uint64
}

// Crash simulates a power failure: every file reverts to its synced bytes
// (plus, with opts.Torn, part of its unsynced tail), every directory to its
// synced entries; open files and the incarnations taken before it fail
// with ErrCrashed from then on.
func (m *MemFS) Crash(opts CrashOptions) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.epoch++
	m.mu.crashes++
	clear(m.mu.dirty) // every file reverts to its synced bytes
	rng := rand.New(rand.NewPCG(opts.Seed, uint64(m.mu.crashes)))
	seen := map[*memInode]bool{}
	dirNames := make([]string, 0, len(m.mu.dirs))
	for name := range m.mu.dirs {
		dirNames = append(dirNames, name)
	}
	slices.Sort(dirNames) // deterministic order for rng
	for _, dn := range dirNames {
		d := m.mu.dirs[dn]
		d.live = map[string]*memInode{}
		names := make([]string, 0, len(d.durable))
		for name := range d.durable {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			ino := d.durable[name]
			d.live[name] = ino
			if !seen[ino] {
				seen[ino] = true
				ino.crash(opts.Torn, rng)
			}
		}
	}
}

func (ino *memInode) crash(torn bool, rng *rand.Rand) {
	data := slices.Clone(ino.synced)
	extra := len(ino.data) - len(ino.synced)
	if torn && extra > 0 && string(ino.data[:len(ino.synced)]) == string(ino.synced) {
		keep := rng.IntN(extra + 1)
		data = append(data, ino.data[len(ino.synced):len(ino.synced)+keep]...)
		if keep > 0 && rng.IntN(2) == 0 {
			bad := rng.IntN(keep) + 1
			tail := data[len(data)-bad:]
			if rng.IntN(2) == 0 {
				clear(tail)
			} else {
				for i := range tail {
					tail[i] = byte(rng.Uint32())
				}
			}
		}
	}
	ino.data = data
	ino.synced = slices.Clone(data)
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) { return m.create(name, anyEpoch) }

func (m *MemFS) create(name string, epoch int) (File, error) {
	if err := m.lock("create", name, epoch); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	d, base, err := m.lookupLocked("create", name)
	if err != nil {
		return nil, err
	}
	ino, ok := d.live[base]
	if ok {
		ino.data = ino.data[:0]
	} else {
		ino = &memInode{}
		d.live[base] = ino
	}
	m.mu.dirty[ino] = struct{}{}
	return &memFile{fs: m, ino: ino, name: name, epoch: m.mu.epoch, write: true}, nil
}

func (m *MemFS) open(name string, write bool, epoch int) (File, error) {
	if err := m.lock("open", name, epoch); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	d, base, err := m.lookupLocked("open", name)
	if err != nil {
		return nil, err
	}
	ino, ok := d.live[base]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{fs: m, ino: ino, name: name, epoch: m.mu.epoch, write: write}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.open(name, false, anyEpoch) }

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string) (File, error) { return m.open(name, true, anyEpoch) }

// Remove implements FS.
func (m *MemFS) Remove(name string) error { return m.remove(name, anyEpoch) }

func (m *MemFS) remove(name string, epoch int) error {
	if err := m.lock("remove", name, epoch); err != nil {
		return err
	}
	defer m.mu.Unlock()
	d, base, err := m.lookupLocked("remove", name)
	if err != nil {
		return err
	}
	if _, ok := d.live[base]; ok {
		delete(d.live, base)
		return nil
	}
	dir := filepath.Clean(name)
	sub, ok := m.mu.dirs[dir]
	if !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if len(sub.live) > 0 || len(m.subdirsLocked(dir)) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	delete(m.mu.dirs, dir) // directories come and go durably at once
	return nil
}

// subdirsLocked returns the names of dir's subdirectories.
func (m *MemFS) subdirsLocked(dir string) []string {
	var names []string
	for path := range m.mu.dirs {
		if path != dir && filepath.Dir(path) == dir {
			names = append(names, filepath.Base(path))
		}
	}
	return names
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error { return m.rename(oldname, newname, anyEpoch) }

func (m *MemFS) rename(oldname, newname string, epoch int) error {
	if err := m.lock("rename", oldname, epoch); err != nil {
		return err
	}
	defer m.mu.Unlock()
	od, obase, err := m.lookupLocked("rename", oldname)
	if err != nil {
		return err
	}
	nd, nbase, err := m.lookupLocked("rename", newname)
	if err != nil {
		return err
	}
	ino, ok := od.live[obase]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(od.live, obase)
	nd.live[nbase] = ino
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string) error { return m.mkdirAll(dir, anyEpoch) }

func (m *MemFS) mkdirAll(dir string, epoch int) error {
	if err := m.lock("mkdir", dir, epoch); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.mkdirLocked(dir)
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]string, error) { return m.readDir(dir, anyEpoch) }

func (m *MemFS) readDir(dir string, epoch int) ([]string, error) {
	if err := m.lock("readdir", dir, epoch); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	d, ok := m.mu.dirs[filepath.Clean(dir)]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	names := m.subdirsLocked(filepath.Clean(dir))
	for name := range d.live {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error { return m.syncDir(dir, anyEpoch) }

func (m *MemFS) syncDir(dir string, epoch int) error {
	if err := m.lock("syncdir", dir, epoch); err != nil {
		return err
	}
	defer m.mu.Unlock()
	d, ok := m.mu.dirs[filepath.Clean(dir)]
	if !ok {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	d.durable = make(map[string]*memInode, len(d.live))
	for name, ino := range d.live {
		d.durable[name] = ino
	}
	return nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (int64, error) { return m.stat(name, anyEpoch) }

func (m *MemFS) stat(name string, epoch int) (int64, error) {
	if err := m.lock("stat", name, epoch); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	d, base, err := m.lookupLocked("stat", name)
	if err != nil {
		return 0, err
	}
	ino, ok := d.live[base]
	if !ok {
		return 0, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return int64(len(ino.data)), nil
}

// memFile is an open MemFS file. Its data lives in the inode, under the
// MemFS's lock.
type memFile struct {
	fs     *MemFS
	ino    *memInode
	name   string
	epoch  int
	write  bool
	closed bool // under fs.mu
}

func (f *memFile) checkLocked(op string, write bool) error {
	switch {
	case f.closed:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	case f.epoch != f.fs.mu.epoch:
		return &fs.PathError{Op: op, Path: f.name, Err: ErrCrashed}
	case write && !f.write:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrPermission}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrInvalid}
	}
	end := off + int64(len(p))
	if old := int64(len(f.ino.data)); end > old {
		if end > int64(cap(f.ino.data)) {
			// Double: fewer copies of a growing file than append's 1.25x.
			grown := make([]byte, old, max(end, 2*int64(cap(f.ino.data))))
			copy(grown, f.ino.data)
			f.ino.data = grown
		}
		f.ino.data = f.ino.data[:end]
		if off > old {
			clear(f.ino.data[old:off]) // a hole reads as zeroes
		}
	}
	copy(f.ino.data[off:], p)
	f.fs.mu.dirty[f.ino] = struct{}{}
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("sync", false); err != nil {
		return err
	}
	f.ino.sync()
	delete(f.fs.mu.dirty, f.ino)
	return nil
}

func (ino *memInode) sync() { ino.synced = append(ino.synced[:0], ino.data...) }

// SyncFS implements FSSyncer as syncfs(2) does: the data of every file of
// the MemFS becomes durable (not only that of files), directory entries do
// not (SyncDir still does that). A handle from before a Crash, or from
// another FS, fails it with nothing synced.
func (m *MemFS) SyncFS(files []File) error { return m.syncFS(files, anyEpoch) }

func (m *MemFS) syncFS(files []File, epoch int) error {
	if err := m.lock("syncfs", "", epoch); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for _, file := range files {
		f, ok := file.(*memFile)
		if !ok || f.fs != m {
			return &fs.PathError{Op: "syncfs", Path: fmt.Sprintf("%T", file), Err: fs.ErrInvalid}
		}
		if err := f.checkLocked("syncfs", false); err != nil {
			return err
		}
	}
	for ino := range m.mu.dirty {
		ino.sync()
	}
	clear(m.mu.dirty)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: fs.ErrInvalid}
	}
	if size <= int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	f.fs.mu.dirty[f.ino] = struct{}{}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat", false); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}
