package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// Kinds of journal record (see the package doc, "Journal").
const (
	journalWrite    byte = 1 // bytes written to a Log's active segment at pos
	journalTruncate byte = 2 // the Log's end became pos (TruncateAfter)
	journalForget   byte = 3 // the Log's earlier records no longer apply (Journal.Forget)
)

// journalRecordHeader is the size of a record's fixed fields: kind, id
// length, pos.
const journalRecordHeader = 1 + 2 + 8

// maxJournalID bounds the length of Options.JournalID.
const maxJournalID = 1<<16 - 1

// journalRecord is a decoded journal record. data aliases the payload it was
// decoded from.
type journalRecord struct {
	kind byte
	id   string
	pos  Pos
	data []byte
}

// appendJournalHeader appends the fields of a record before its data.
func appendJournalHeader(dst []byte, kind byte, id string, pos Pos) []byte {
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(id)))
	dst = append(dst, id...)
	return binary.LittleEndian.AppendUint64(dst, uint64(pos))
}

// decodeJournalRecord decodes the payload of a journal frame.
func decodeJournalRecord(b []byte) (journalRecord, error) {
	if len(b) < journalRecordHeader {
		return journalRecord{}, fmt.Errorf("journal record of %d bytes is shorter than its header", len(b))
	}
	r := journalRecord{kind: b[0]}
	n := int(binary.LittleEndian.Uint16(b[1:3]))
	if len(b) < journalRecordHeader+n {
		return journalRecord{}, fmt.Errorf("journal record of %d bytes too short for its %d-byte id", len(b), n)
	}
	r.id = string(b[3 : 3+n])
	p := binary.LittleEndian.Uint64(b[3+n : 11+n])
	if p > 1<<62 {
		return journalRecord{}, fmt.Errorf("journal record position %d out of range", p)
	}
	r.pos = Pos(p)
	r.data = b[11+n:]
	switch r.kind {
	case journalWrite:
	case journalTruncate, journalForget:
		if len(r.data) != 0 {
			return journalRecord{}, fmt.Errorf("journal record of kind %d carries %d data bytes", r.kind, len(r.data))
		}
	default:
		return journalRecord{}, fmt.Errorf("unknown journal record kind %d", r.kind)
	}
	return r, nil
}

// journalRef is the index entry of one record: where it is in the journal
// and what it says, without its data.
type journalRef struct {
	jpos, jend Pos // the record's frame in the journal
	kind       byte
	pos        Pos
	n          int // data bytes
}

// liveSpan is a run of a Log's bytes that the journal holds: n bytes at pos,
// the data bytes [skip, skip+n) of the record at jpos.
type liveSpan struct {
	pos  Pos
	jpos Pos
	skip int
	n    int
}

// replayPlan is what a Log's records say its segments must hold: the
// spans, and, when the last record is a truncation, the end to cut at.
type replayPlan struct {
	spans  []liveSpan
	end    Pos
	hasEnd bool
}

// planReplay folds a Log's records, in journal order, into the bytes they
// leave. A write at p or a truncation to p drops everything at or past p
// (the Log's end was p when it was made); forget drops everything. Only a
// truncation that no write follows cuts the files: a write after it means
// the truncation had been synced in the segment already, and the bytes past
// the last write are the Log's own (written after its last record, or
// synced by a roll, a checkpoint or Close before their record was).
func planReplay(refs []journalRef) replayPlan {
	var p replayPlan
	for _, r := range refs {
		switch r.kind {
		case journalForget:
			p = replayPlan{spans: p.spans[:0]}
		case journalWrite:
			p.cut(r.pos)
			if r.n > 0 {
				p.spans = append(p.spans, liveSpan{pos: r.pos, jpos: r.jpos, n: r.n})
			}
			p.hasEnd = false
		case journalTruncate:
			p.cut(r.pos)
			p.end, p.hasEnd = r.pos, true
		}
	}
	return p
}

// cut drops the bytes at and past pos.
func (p *replayPlan) cut(pos Pos) {
	for len(p.spans) > 0 {
		last := &p.spans[len(p.spans)-1]
		if last.pos >= pos {
			p.spans = p.spans[:len(p.spans)-1]
			continue
		}
		if last.pos+Pos(last.n) > pos {
			last.n = int(pos - last.pos)
		}
		return
	}
}

// replaySegment is a segment file opened by a replay.
type replaySegment struct {
	start   Pos
	name    string
	f       File
	touched bool
}

// replay applies a Log's journal records to its segment files in dir:
// writes the spans, cuts the log where a final truncation says (removing
// the segments past it, last first, each removal made durable), and syncs
// every file it changed. read returns the data of the record at jpos. Spans
// below the first segment (deleted by retention) are skipped. It is
// idempotent: a crash during a replay and a second replay give what one
// replay gives. It returns the end of the bytes it restored (-1 if none).
func replay(fsys FS, dir string, refs []journalRef, read func(jpos Pos) ([]byte, error),
	logf func(msg string, args ...any)) (restored Pos, err error) {
	restored = -1
	plan := planReplay(refs)
	if len(plan.spans) == 0 && !plan.hasEnd {
		return restored, nil
	}
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return restored, nil
	}
	if err != nil {
		return restored, fmt.Errorf("wal: journal replay: list %s: %w", dir, err)
	}
	var segs []*replaySegment
	defer func() {
		for _, s := range segs {
			if s.f != nil {
				if cerr := s.f.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("wal: journal replay: close %s: %w", s.name, cerr)
				}
			}
		}
	}()
	for _, name := range names {
		if start, ok := parseSegmentName(name); ok {
			segs = append(segs, &replaySegment{start: start, name: name})
		}
	}
	if len(segs) == 0 {
		return restored, nil
	}
	open := func(s *replaySegment) error {
		if s.f != nil {
			return nil
		}
		f, err := fsys.OpenReadWrite(join(dir, s.name))
		if err != nil {
			return fmt.Errorf("wal: journal replay: open %s: %w", s.name, err)
		}
		s.f = f
		return nil
	}
	holder := func(pos Pos) int {
		i, found := slices.BinarySearchFunc(segs, pos, func(s *replaySegment, p Pos) int { return cmpPos(s.start, p) })
		if !found {
			i--
		}
		return i
	}
	for _, sp := range plan.spans {
		i := holder(sp.pos)
		if i < 0 {
			continue // deleted by retention
		}
		s := segs[i]
		n := sp.n
		if i+1 < len(segs) && sp.pos+Pos(n) > segs[i+1].start {
			logf("journal replay: a record crosses a segment boundary; clipped", "segment", s.name, "pos", sp.pos)
			n = int(segs[i+1].start - sp.pos)
		}
		data, err := read(sp.jpos)
		if err != nil {
			return restored, err
		}
		if sp.skip+n > len(data) {
			return restored, fmt.Errorf("wal: journal replay: record at %d holds %d bytes, want %d", sp.jpos, len(data), sp.skip+n)
		}
		if err := open(s); err != nil {
			return restored, err
		}
		off := SegmentHeaderSize + int64(sp.pos-s.start)
		if _, err := s.f.WriteAt(data[sp.skip:sp.skip+n], off); err != nil {
			return restored, fmt.Errorf("wal: journal replay: write %s at %d: %w", s.name, off, err)
		}
		s.touched = true
		restored = sp.pos + Pos(n)
	}
	if plan.hasEnd {
		if err := replayCut(fsys, dir, &segs, plan.end, open, holder); err != nil {
			return restored, err
		}
		restored = min(restored, plan.end)
	}
	for _, s := range segs {
		if s.touched {
			if err := s.f.Sync(); err != nil {
				return restored, fmt.Errorf("wal: journal replay: sync %s: %w", s.name, err)
			}
		}
	}
	return restored, nil
}

// replayCut makes end the end of the log: removes the segments starting
// past it (last first, each removal durable) and truncates the one holding
// it.
func replayCut(fsys FS, dir string, segs *[]*replaySegment, end Pos,
	open func(*replaySegment) error, holder func(Pos) int) error {
	i := holder(end)
	if i < 0 {
		return nil
	}
	for len(*segs) > i+1 {
		last := (*segs)[len(*segs)-1]
		*segs = (*segs)[:len(*segs)-1]
		if last.f != nil {
			if err := last.f.Close(); err != nil {
				return fmt.Errorf("wal: journal replay: close %s: %w", last.name, err)
			}
			last.f = nil
		}
		if err := fsys.Remove(join(dir, last.name)); err != nil {
			return fmt.Errorf("wal: journal replay: remove %s: %w", last.name, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return fmt.Errorf("wal: journal replay: sync dir: %w", err)
		}
	}
	s := (*segs)[i]
	if err := open(s); err != nil {
		return err
	}
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("wal: journal replay: size of %s: %w", s.name, err)
	}
	if want := SegmentHeaderSize + int64(end-s.start); size > want {
		if err := s.f.Truncate(want); err != nil {
			return fmt.Errorf("wal: journal replay: truncate %s: %w", s.name, err)
		}
		s.touched = true
	}
	return nil
}
