package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/cespare/xxhash/v2"
)

const (
	cleanName  = "clean"
	cleanMagic = "RLOGCLN\x00"
	cleanSize  = 32
	scanChunk  = 1 << 20
)

// recover opens the segments of the directory (creating the first one in an
// empty directory), checks that they are contiguous, recovers the last one
// and removes the clean-shutdown marker. It returns the segments and the end.
func (l *Log) recover() (segs []*segment, end Pos, err error) {
	if err := MkdirAll(l.fs, l.dir); err != nil {
		return nil, 0, err
	}
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, 0, fmt.Errorf("wal: list %s: %w", l.dir, err)
	}
	defer func() {
		if err != nil {
			for _, s := range segs {
				_ = s.f.Close() // already failing; the first error is the one to report
			}
			segs = nil
		}
	}()
	clean, hasMarker := l.readCleanMarker()
	for _, name := range names {
		start, ok := parseSegmentName(name)
		if !ok {
			if name == cleanName+".tmp" {
				// The marker's temporary file, left by a crash in Close.
				if err := l.fs.Remove(join(l.dir, name)); err != nil {
					return segs, 0, fmt.Errorf("wal: remove %s: %w", name, err)
				}
			}
			continue
		}
		f, err := l.fs.OpenReadWrite(join(l.dir, name))
		if err != nil {
			return segs, 0, fmt.Errorf("wal: open %s: %w", name, err)
		}
		segs = append(segs, &segment{start: start, name: name, f: f, refs: 1})
	}
	if len(segs) == 0 {
		f, err := l.fs.Create(join(l.dir, segmentName(0)))
		if err != nil {
			return nil, 0, fmt.Errorf("wal: create first segment: %w", err)
		}
		seg := &segment{start: 0, name: segmentName(0), f: f, refs: 1}
		segs = append(segs, seg)
		if err := l.writeHeaderDurably(seg); err != nil {
			return segs, 0, err
		}
		return segs, 0, nil
	}
	for i, s := range segs[:len(segs)-1] {
		if err := l.checkSealed(s, segs[i+1].start); err != nil {
			return segs, 0, err
		}
	}
	last := segs[len(segs)-1]
	size, err := last.f.Size()
	if err != nil {
		return segs, 0, fmt.Errorf("wal: size of %s: %w", last.name, err)
	}
	if hasMarker && clean.start == last.start && clean.size == size && size >= SegmentHeaderSize {
		end = last.start + Pos(size-SegmentHeaderSize)
	} else {
		if end, err = l.recoverLast(last, size); err != nil {
			return segs, 0, err
		}
	}
	if hasMarker {
		// The marker must not outlive this Open: the next crash must scan.
		if err := l.fs.Remove(join(l.dir, cleanName)); err != nil {
			return segs, 0, fmt.Errorf("wal: remove clean-shutdown marker: %w", err)
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return segs, 0, fmt.Errorf("wal: sync dir: %w", err)
		}
	}
	return segs, end, nil
}

// checkSealed checks a segment before the last: its header, and that it ends
// where the next one starts. Its frames are not read.
func (l *Log) checkSealed(s *segment, next Pos) error {
	var h [SegmentHeaderSize]byte
	if _, err := s.f.ReadAt(h[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("wal: read header of %s: %w", s.name, err)
	}
	if err := checkSegmentHeader(h[:], s.start); err != nil {
		return &CorruptError{Segment: s.name, Offset: 0, Reason: err.Error()}
	}
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("wal: size of %s: %w", s.name, err)
	}
	if end := s.start + Pos(size-SegmentHeaderSize); end != next {
		return &CorruptError{Segment: s.name, Offset: size,
			Reason: fmt.Sprintf("segment ends at position %d but the next starts at %d", end, next)}
	}
	return nil
}

// writeHeaderDurably (re)initialises a segment file: truncate, header, sync,
// directory sync.
func (l *Log) writeHeaderDurably(s *segment) error {
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", s.name, err)
	}
	h := segmentHeader(s.start)
	if _, err := s.f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("wal: write header of %s: %w", s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("wal: sync %s: %w", s.name, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}

// recoverLast scans the last segment and truncates its torn tail. It returns
// the end position.
func (l *Log) recoverLast(s *segment, size int64) (Pos, error) {
	var h [SegmentHeaderSize]byte
	n, err := s.f.ReadAt(h[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("wal: read header of %s: %w", s.name, err)
	}
	if herr := checkSegmentHeader(h[:n], s.start); herr != nil {
		if size > SegmentHeaderSize {
			return 0, &CorruptError{Segment: s.name, Offset: 0, Reason: herr.Error()}
		}
		// A roll that crashed before its header was durable: no frame was
		// ever acknowledged in this segment.
		l.logger.Warn("reinitialising torn segment header", "segment", s.name, "err", herr)
		return s.start, l.writeHeaderDurably(s)
	}
	off, reason, err := scanFrames(s.f, s.start, size)
	if err != nil {
		return 0, fmt.Errorf("wal: scan %s: %w", s.name, err)
	}
	if off == size {
		return s.start + Pos(off-SegmentHeaderSize), nil
	}
	valid, err := findValidFrame(s.f, s.start, off+1, size)
	if err != nil {
		return 0, fmt.Errorf("wal: scan %s: %w", s.name, err)
	}
	if valid >= 0 {
		cerr := &CorruptError{Segment: s.name, Offset: off,
			Reason: fmt.Sprintf("%s, and a valid frame follows at offset %d", reason, valid)}
		replayed := l.opts.Journal != nil && l.replayedEnd >= 0 && s.start+Pos(off-SegmentHeaderSize) >= l.replayedEnd
		if l.opts.Durability == SyncAlways && !replayed {
			return 0, cerr
		}
		if replayed {
			// Past what the journal restored: bytes written after the
			// last durable record, never synced, that the disk may have
			// kept in any order.
			l.logger.Warn("damage past the journal's last record; truncating", "err", cerr)
		} else {
			l.logger.Warn("damage in the unsynced tail; truncating (Durability is not SyncAlways)", "err", cerr)
		}
	}
	l.logger.Warn("truncating torn tail", "segment", s.name, "offset", off,
		"dropped_bytes", size-off, "reason", reason)
	if err := s.f.Truncate(off); err != nil {
		return 0, fmt.Errorf("wal: truncate %s: %w", s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return 0, fmt.Errorf("wal: sync %s: %w", s.name, err)
	}
	return s.start + Pos(off-SegmentHeaderSize), nil
}

// scanFrames reads the frames of a segment file from its header on and
// returns the offset right after the last whole valid frame, and why the
// next bytes are not one (when the offset is short of size).
func scanFrames(f File, start Pos, size int64) (end int64, reason string, err error) {
	buf := make([]byte, scanChunk)
	off := int64(SegmentHeaderSize) // file offset of buf[0]
	have := 0                       // valid bytes in buf
	pos := start
	at := 0 // offset in buf of the next frame
	for {
		if int64(at)+off >= size {
			return off + int64(at), "", nil
		}
		payload, fsize, short, derr := decodeFrame(buf[at:have], pos)
		if derr == nil {
			at += fsize
			pos += Pos(fsize)
			_ = payload
			continue
		}
		if !short || off+int64(have) >= size {
			return off + int64(at), derr.Error(), nil
		}
		// Refill: move the partial frame to the front, grow for big frames.
		copy(buf, buf[at:have])
		have -= at
		off += int64(at)
		at = 0
		need := wantLen(buf[:have])
		if int64(need) > size-off {
			return off, "frame extends past the end of the file", nil
		}
		if need > len(buf) {
			buf = append(buf, make([]byte, need-len(buf))...)
		}
		if have == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		want := min(int64(len(buf)-have), size-off-int64(have))
		n, rerr := f.ReadAt(buf[have:have+int(want)], off+int64(have))
		have += n
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return 0, "", rerr
		}
		if n == 0 {
			return off, "unexpected end of file", nil
		}
	}
}

// wantLen is the size of the frame whose (possibly partial) bytes start b,
// as far as its header tells: enough to decide about it.
func wantLen(b []byte) int {
	if len(b) < FrameHeaderSize {
		return FrameHeaderSize
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n > maxDecodeLength {
		return FrameHeaderSize
	}
	return FrameHeaderSize + int(n)
}

// findValidFrame looks at every offset in [from, size) for a whole valid
// frame (for the position that offset has) and returns the first one's
// offset, or -1.
func findValidFrame(f File, start Pos, from, size int64) (int64, error) {
	buf := make([]byte, scanChunk+FrameHeaderSize)
	var payload []byte
	for base := from; base+FrameHeaderSize <= size; base += scanChunk {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		for i := 0; i < scanChunk && i+FrameHeaderSize <= n; i++ {
			o := base + int64(i)
			pos := start + Pos(o-SegmentHeaderSize)
			length, sum, ok := decodeHeader(buf[i:n], pos)
			if !ok || o+FrameHeaderSize+int64(length) > size {
				continue
			}
			payload = slices.Grow(payload[:0], length)[:length]
			if _, err := f.ReadAt(payload, o+FrameHeaderSize); err != nil && !errors.Is(err, io.EOF) {
				return -1, err
			}
			if xxhash.Sum64(payload) == sum {
				return o, nil
			}
		}
	}
	return -1, nil
}

// cleanMarker is the content of the clean-shutdown marker.
type cleanMarker struct {
	start Pos   // the last segment's start
	size  int64 // its file size at Close
}

func (c cleanMarker) encode() []byte {
	b := make([]byte, cleanSize)
	copy(b[0:8], cleanMagic)
	binary.LittleEndian.PutUint64(b[8:16], uint64(c.start))
	binary.LittleEndian.PutUint64(b[16:24], uint64(c.size))
	binary.LittleEndian.PutUint64(b[24:32], xxhash.Sum64(b[0:24]))
	return b
}

func decodeCleanMarker(b []byte) (cleanMarker, bool) {
	if len(b) != cleanSize || string(b[0:8]) != cleanMagic ||
		binary.LittleEndian.Uint64(b[24:32]) != xxhash.Sum64(b[0:24]) {
		return cleanMarker{}, false
	}
	return cleanMarker{
		start: Pos(binary.LittleEndian.Uint64(b[8:16])),
		size:  int64(binary.LittleEndian.Uint64(b[16:24])),
	}, true
}

// readCleanMarker reads the marker. exists is true when a marker file is
// there at all (valid or not: Open removes it either way).
func (l *Log) readCleanMarker() (m cleanMarker, exists bool) {
	b, err := ReadFile(l.fs, join(l.dir, cleanName))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.logger.Warn("unreadable clean-shutdown marker; scanning", "err", err)
			return cleanMarker{start: -1}, true
		}
		return cleanMarker{}, false
	}
	m, ok := decodeCleanMarker(b)
	if !ok {
		l.logger.Warn("invalid clean-shutdown marker; scanning")
		return cleanMarker{start: -1}, true
	}
	return m, true
}

// writeCleanMarker records the last segment's size for the next Open.
func (l *Log) writeCleanMarker() error {
	m := cleanMarker{start: l.w.active.start, size: l.w.size}
	return l.guard("write clean-shutdown marker", func() error {
		return WriteFileAtomic(l.fs, join(l.dir, cleanName), m.encode())
	})
}
