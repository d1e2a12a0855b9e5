package meta

import (
	"encoding/binary"
	"fmt"
)

// Meta messages (mux.TagMeta) after the tag byte, all of one shape:
//
//	+------+----------------+-------------------------+
//	| kind | uvarint nodeID | uvarint value           |
//	+------+----------------+-------------------------+
//	  1 B
//
// nodeID is the sender. The kinds and their values:
const (
	metaHeartbeat = 1 // to the controller: value is the sender's incarnation
	metaAsk       = 2 // "answer once you have applied this raft index"
	metaApplied   = 3 // the answer: value is the sender's applied index
)

// metaMsg is one meta message.
type metaMsg struct {
	kind      byte
	node, val uint64
}

// heartbeatMsg is a node's heartbeat to the controller.
type heartbeatMsg struct {
	node, inc uint64
}

// appendMeta appends m's wire form to b.
func appendMeta(b []byte, m metaMsg) []byte {
	b = append(b, m.kind)
	b = binary.AppendUvarint(b, m.node)
	return binary.AppendUvarint(b, m.val)
}

// appendHeartbeat appends h's wire form to b.
func appendHeartbeat(b []byte, h heartbeatMsg) []byte {
	return appendMeta(b, metaMsg{kind: metaHeartbeat, node: h.node, val: h.inc})
}

// decodeMeta parses a meta message (without its tag).
func decodeMeta(b []byte) (metaMsg, error) {
	if len(b) < 1 || b[0] < metaHeartbeat || b[0] > metaApplied {
		return metaMsg{}, fmt.Errorf("%w: meta message kind", ErrCorrupt)
	}
	kind, b := b[0], b[1:]
	node, n := binary.Uvarint(b)
	if n <= 0 {
		return metaMsg{}, fmt.Errorf("%w: meta message node", ErrCorrupt)
	}
	val, m := binary.Uvarint(b[n:])
	if m <= 0 || n+m != len(b) {
		return metaMsg{}, fmt.Errorf("%w: meta message value", ErrCorrupt)
	}
	return metaMsg{kind: kind, node: node, val: val}, nil
}
