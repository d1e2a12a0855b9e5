package meta

import (
	"encoding/binary"
	"fmt"
)

// Meta messages (mux.TagMeta) after the tag byte:
//
//	+------+----------------+---------------+-----------------+
//	| kind | uvarint nodeID | uvarint value | uvarint sent    |
//	+------+----------------+---------------+-----------------+
//	  1 B                                     heartbeats only
//
// nodeID is the sender. The kinds and their values:
const (
	metaHeartbeat    = 1 // to the controller: value is the sender's incarnation; sent its clock reading (ns)
	metaAsk          = 2 // "answer once you have applied this raft index"
	metaApplied      = 3 // the answer: value is the sender's applied index
	metaHeartbeatAck = 4 // the controller took a heartbeat: value is the heartbeat's sent
)

// metaMsg is one meta message; sent is a heartbeat's only (0 otherwise,
// and in a heartbeat of a sender that does not stamp them).
type metaMsg struct {
	kind            byte
	node, val, sent uint64
}

// heartbeatMsg is a node's heartbeat to the controller, stamped with the
// sender's clock (Node.clock, in ns) so that the controller's
// acknowledgement tells the sender when the heartbeat it took left.
type heartbeatMsg struct {
	node, inc, sent uint64
}

// appendMeta appends m's wire form to b.
func appendMeta(b []byte, m metaMsg) []byte {
	b = append(b, m.kind)
	b = binary.AppendUvarint(b, m.node)
	b = binary.AppendUvarint(b, m.val)
	if m.kind == metaHeartbeat {
		b = binary.AppendUvarint(b, m.sent)
	}
	return b
}

// appendHeartbeat appends h's wire form to b.
func appendHeartbeat(b []byte, h heartbeatMsg) []byte {
	return appendMeta(b, metaMsg{kind: metaHeartbeat, node: h.node, val: h.inc, sent: h.sent})
}

// decodeMeta parses a meta message (without its tag).
func decodeMeta(b []byte) (metaMsg, error) {
	if len(b) < 1 || b[0] < metaHeartbeat || b[0] > metaHeartbeatAck {
		return metaMsg{}, fmt.Errorf("%w: meta message kind", ErrCorrupt)
	}
	kind, b := b[0], b[1:]
	node, n := binary.Uvarint(b)
	if n <= 0 {
		return metaMsg{}, fmt.Errorf("%w: meta message node", ErrCorrupt)
	}
	b = b[n:]
	val, n := binary.Uvarint(b)
	if n <= 0 {
		return metaMsg{}, fmt.Errorf("%w: meta message value", ErrCorrupt)
	}
	b = b[n:]
	m := metaMsg{kind: kind, node: node, val: val}
	if kind == metaHeartbeat && len(b) > 0 {
		if m.sent, n = binary.Uvarint(b); n <= 0 {
			return metaMsg{}, fmt.Errorf("%w: heartbeat time", ErrCorrupt)
		}
		b = b[n:]
	}
	if len(b) != 0 {
		return metaMsg{}, fmt.Errorf("%w: meta message length", ErrCorrupt)
	}
	return m, nil
}
