package meta

import (
	"encoding/binary"
	"fmt"
)

// Meta messages (mux.TagMeta) after the tag byte:
//
//	+------+----------------+-------------------------+
//	| kind | uvarint nodeID | uvarint incarnation     |   kind 1: heartbeat
//	+------+----------------+-------------------------+
//	  1 B
const metaHeartbeat = 1

// heartbeatMsg is a node's heartbeat to the controller.
type heartbeatMsg struct {
	node, inc uint64
}

// appendHeartbeat appends h's wire form to b.
func appendHeartbeat(b []byte, h heartbeatMsg) []byte {
	b = append(b, metaHeartbeat)
	b = binary.AppendUvarint(b, h.node)
	return binary.AppendUvarint(b, h.inc)
}

// decodeMeta parses a meta message (without its tag).
func decodeMeta(b []byte) (heartbeatMsg, error) {
	if len(b) < 1 || b[0] != metaHeartbeat {
		return heartbeatMsg{}, fmt.Errorf("%w: meta message kind", ErrCorrupt)
	}
	b = b[1:]
	node, n := binary.Uvarint(b)
	if n <= 0 {
		return heartbeatMsg{}, fmt.Errorf("%w: heartbeat node", ErrCorrupt)
	}
	inc, m := binary.Uvarint(b[n:])
	if m <= 0 || n+m != len(b) {
		return heartbeatMsg{}, fmt.Errorf("%w: heartbeat incarnation", ErrCorrupt)
	}
	return heartbeatMsg{node: node, inc: inc}, nil
}
