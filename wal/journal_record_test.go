package wal

import (
	"bytes"
	"slices"
	"testing"
)

func encodeJournalRecord(kind byte, id string, pos Pos, data []byte) []byte {
	return append(appendJournalHeader(nil, kind, id, pos), data...)
}

// FuzzJournalRecord: the decoder never panics, and what it accepts encodes
// back to the same bytes. The seeds run in every go test.
func FuzzJournalRecord(f *testing.F) {
	f.Add(encodeJournalRecord(journalWrite, "/data/t-0", 4096, []byte("frame bytes")))
	f.Add(encodeJournalRecord(journalWrite, "", 0, nil))
	f.Add(encodeJournalRecord(journalTruncate, "p", 77, nil))
	f.Add(encodeJournalRecord(journalForget, "p", 0, nil))
	f.Add(encodeJournalRecord(journalTruncate, "p", 77, []byte("x")))    // data on a truncation
	f.Add(encodeJournalRecord(9, "p", 77, nil))                          // unknown kind
	f.Add(encodeJournalRecord(journalWrite, "long id", 1, nil)[:8])      // short id
	f.Add(encodeJournalRecord(journalWrite, "", 1<<63-1, []byte("big"))) // position out of range
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeJournalRecord(b)
		if err != nil {
			return
		}
		again := encodeJournalRecord(r.kind, r.id, r.pos, r.data)
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v re-encodes as %x, from %x", r, again, b)
		}
	})
}

// TestJournalRecordRejects: each malformed record is refused.
func TestJournalRecordRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":              {},
		"short header":       {journalWrite, 0, 0, 1, 2},
		"id past the end":    encodeJournalRecord(journalWrite, "abcdef", 0, nil)[:6],
		"unknown kind":       encodeJournalRecord(0, "a", 0, nil),
		"truncate with data": encodeJournalRecord(journalTruncate, "a", 0, []byte{1}),
		"huge position":      encodeJournalRecord(journalWrite, "a", 1<<62+1, nil),
	} {
		if r, err := decodeJournalRecord(b); err == nil {
			t.Errorf("%s: decoded as %+v", name, r)
		}
	}
}

// TestPlanReplay: how records fold into the bytes to restore and the cut.
func TestPlanReplay(t *testing.T) {
	w := func(jpos, pos Pos, n int) journalRef {
		return journalRef{jpos: jpos, kind: journalWrite, pos: pos, n: n}
	}
	tr := func(jpos, pos Pos) journalRef { return journalRef{jpos: jpos, kind: journalTruncate, pos: pos} }
	fg := journalRef{kind: journalForget}
	type span struct {
		pos Pos
		n   int
	}
	for _, tc := range []struct {
		name   string
		refs   []journalRef
		spans  []span
		cut    Pos
		hasCut bool
	}{
		{"writes", []journalRef{w(0, 100, 10), w(1, 110, 20)}, []span{{100, 10}, {110, 20}}, 0, false},
		{"truncation last cuts", []journalRef{w(0, 100, 10), w(1, 110, 20), tr(2, 115)}, []span{{100, 10}, {110, 5}}, 115, true},
		{"write after truncation: no cut", []journalRef{w(0, 100, 10), w(1, 110, 20), tr(2, 105), w(3, 105, 7)},
			[]span{{100, 5}, {105, 7}}, 0, false},
		{"write below the end drops what follows", []journalRef{w(0, 100, 10), w(1, 110, 20), w(2, 100, 3)},
			[]span{{100, 3}}, 0, false},
		{"truncation to a span start", []journalRef{w(0, 100, 10), w(1, 110, 20), tr(2, 110)}, []span{{100, 10}}, 110, true},
		{"forget", []journalRef{w(0, 100, 10), tr(1, 105), fg}, nil, 0, false},
		{"forget then new", []journalRef{w(0, 100, 10), fg, w(2, 0, 4)}, []span{{0, 4}}, 0, false},
	} {
		p := planReplay(tc.refs)
		var got []span
		for _, s := range p.spans {
			got = append(got, span{s.pos, s.n})
		}
		if !slices.Equal(got, tc.spans) || p.hasEnd != tc.hasCut || (p.hasEnd && p.end != tc.cut) {
			t.Errorf("%s: spans %v cut %v@%d, want %v cut %v@%d", tc.name, got, p.hasEnd, p.end, tc.spans, tc.hasCut, tc.cut)
		}
	}
}
