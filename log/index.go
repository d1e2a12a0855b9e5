package log

import "sort"

// indexEntry maps the base offset of a batch to the wal position of its
// frame. MaxTs is the largest record timestamp (ns) of the batches from
// this entry up to the next one, or an upper bound of it.
type indexEntry struct {
	Offset int64
	Pos    int64
	MaxTs  int64
}

// offsetIndex is the sparse offset index: one entry per interval bytes of
// wal, ordered by offset and position alike. Pure data; the Log locks it.
type offsetIndex struct {
	entries  []indexEntry
	interval int64
}

// add records a batch with base offset base at position pos whose largest
// timestamp is maxTs. Batches must be added in log order.
func (x *offsetIndex) add(base, pos, maxTs int64) {
	n := len(x.entries)
	if n == 0 || pos-x.entries[n-1].Pos >= x.interval {
		x.entries = append(x.entries, indexEntry{Offset: base, Pos: pos, MaxTs: maxTs})
		return
	}
	x.entries[n-1].MaxTs = max(x.entries[n-1].MaxTs, maxTs)
}

// lookup returns the entry with the largest offset <= offset; ok false if
// offset is before the first entry.
func (x *offsetIndex) lookup(offset int64) (indexEntry, bool) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].Offset > offset })
	if i == 0 {
		return indexEntry{}, false
	}
	return x.entries[i-1], true
}

// truncateFromEnd drops entries for batches at or after pos.
func (x *offsetIndex) truncateFromEnd(pos int64) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].Pos >= pos })
	x.entries = x.entries[:i]
}

// truncateFromStart drops entries before pos, the new first batch (base
// offset base), and makes the first entry point at it.
func (x *offsetIndex) truncateFromStart(pos, base int64) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].Pos > pos })
	// entries[i-1] is the one covering pos (if any).
	if i == 0 {
		return
	}
	first := x.entries[i-1]
	first.Offset, first.Pos = base, pos
	x.entries = append(x.entries[:0], x.entries[i-1:]...)
	x.entries[0] = first
}

// prefixOlderThan returns the position up to which every indexed batch
// has a max timestamp below cutoff: the position of the first entry that
// does not, or end if all do.
func (x *offsetIndex) prefixOlderThan(cutoff, end int64) int64 {
	for _, e := range x.entries {
		if e.MaxTs >= cutoff {
			return e.Pos
		}
	}
	return end
}

// lastBefore returns the last entry with Pos < pos.
func (x *offsetIndex) lastBefore(pos int64) (indexEntry, bool) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].Pos >= pos })
	if i == 0 {
		return indexEntry{}, false
	}
	return x.entries[i-1], true
}
