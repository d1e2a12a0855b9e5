package meta

import (
	"cmp"
	"slices"
)

// dedupWindow is how many of a proposer's most recent request numbers the
// state machine remembers. A request older than that is refused as a
// duplicate: it can only be a retry that lost a race for minutes.
const dedupWindow = 4096

// proposer identifies one Open of one node: requests are numbered per Open.
type proposer struct {
	Node, Nonce uint64
}

// seqWindow remembers which request numbers of one proposer were applied.
type seqWindow struct {
	max  uint64
	seen map[uint64]bool // seqs in (max-dedupWindow, max]
}

// dedupTable makes retried proposals apply once: a proposal that raft or
// the network seemed to lose is proposed again with the same numbers, and
// whichever copy is applied second is skipped. Owned by the apply loop;
// part of the snapshot.
type dedupTable map[proposer]*seqWindow

// seen records (p, seq) and reports whether it was already applied (or is
// too old to tell).
func (d dedupTable) seen(p proposer, seq uint64) bool {
	w, ok := d[p]
	if !ok {
		w = &seqWindow{seen: map[uint64]bool{}}
		d[p] = w
	}
	if seq+dedupWindow <= w.max || w.seen[seq] {
		return true
	}
	w.seen[seq] = true
	if seq > w.max {
		w.max = seq
	}
	if len(w.seen) > 2*dedupWindow {
		for s := range w.seen {
			if s+dedupWindow <= w.max {
				delete(w.seen, s)
			}
		}
	}
	return false
}

// forget drops the windows of node's earlier Opens.
func (d dedupTable) forget(node, nonce uint64) {
	for p := range d {
		if p.Node == node && p.Nonce != nonce {
			delete(d, p)
		}
	}
}

// dedupEntry is a seqWindow in a snapshot.
type dedupEntry struct {
	Node  uint64   `json:"node"`
	Nonce uint64   `json:"nonce"`
	Max   uint64   `json:"max"`
	Seen  []uint64 `json:"seen"`
}

func (d dedupTable) entries() []dedupEntry {
	out := make([]dedupEntry, 0, len(d))
	for p, w := range d {
		e := dedupEntry{Node: p.Node, Nonce: p.Nonce, Max: w.max}
		for s := range w.seen {
			if s+dedupWindow > w.max {
				e.Seen = append(e.Seen, s)
			}
		}
		slices.Sort(e.Seen)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b dedupEntry) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Nonce, b.Nonce))
	})
	return out
}

func dedupFrom(es []dedupEntry) dedupTable {
	d := dedupTable{}
	for _, e := range es {
		w := &seqWindow{max: e.Max, seen: make(map[uint64]bool, len(e.Seen))}
		for _, s := range e.Seen {
			w.seen[s] = true
		}
		d[proposer{e.Node, e.Nonce}] = w
	}
	return d
}
