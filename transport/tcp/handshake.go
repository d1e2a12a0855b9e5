package tcp

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The handshake. The dialling node sends a hello; the accepting node checks
// it and answers with a hello of its own whose status says whether it took
// the connection. Both are helloSize bytes:
//
//	0      4        6        8              16             24             32
//	+------+--------+--------+--------------+--------------+--------------+
//	| RPLG | version| status |  cluster ID  |   from ID    |    to ID     |
//	+------+--------+--------+--------------+--------------+--------------+
//	 magic   uint16   uint16     uint64          uint64         uint64
//
// All integers are big-endian. from is the sender of the hello, to the node
// it believes it is talking to.
const (
	helloSize       = 32
	protocolVersion = 1
)

var magic = [4]byte{'R', 'P', 'L', 'G'}

// Handshake statuses: why an acceptor refused a dialler.
const (
	statusOK             uint16 = 0
	statusWrongCluster   uint16 = 1 // cluster IDs differ
	statusUnknownNode    uint16 = 2 // the dialler is not one of the acceptor's peers
	statusWrongNode      uint16 = 3 // the dialler reached another node than it meant
	statusWrongDirection uint16 = 4 // the dialler has the higher ID: it should accept
	statusBadVersion     uint16 = 5 // protocol version not spoken
)

func statusText(s uint16) string {
	switch s {
	case statusOK:
		return "ok"
	case statusWrongCluster:
		return "wrong cluster ID"
	case statusUnknownNode:
		return "unknown node ID"
	case statusWrongNode:
		return "reached another node than intended"
	case statusWrongDirection:
		return "the higher node ID must not dial"
	case statusBadVersion:
		return "unsupported protocol version"
	}
	return fmt.Sprintf("status %d", s)
}

// hello is one side's handshake message.
type hello struct {
	version uint16
	status  uint16
	cluster uint64
	from    uint64
	to      uint64
}

func (h hello) encode() []byte {
	b := make([]byte, helloSize)
	copy(b, magic[:])
	binary.BigEndian.PutUint16(b[4:], h.version)
	binary.BigEndian.PutUint16(b[6:], h.status)
	binary.BigEndian.PutUint64(b[8:], h.cluster)
	binary.BigEndian.PutUint64(b[16:], h.from)
	binary.BigEndian.PutUint64(b[24:], h.to)
	return b
}

// decodeHello parses a hello. It fails on a short buffer or a bad magic;
// the fields are checked by the caller.
func decodeHello(b []byte) (hello, error) {
	if len(b) < helloSize {
		return hello{}, fmt.Errorf("%w: hello of %d bytes", ErrHandshake, len(b))
	}
	if [4]byte(b[:4]) != magic {
		return hello{}, fmt.Errorf("%w: bad magic %q", ErrHandshake, b[:4])
	}
	return hello{
		version: binary.BigEndian.Uint16(b[4:]),
		status:  binary.BigEndian.Uint16(b[6:]),
		cluster: binary.BigEndian.Uint64(b[8:]),
		from:    binary.BigEndian.Uint64(b[16:]),
		to:      binary.BigEndian.Uint64(b[24:]),
	}, nil
}

func readHello(r io.Reader) (hello, error) {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return hello{}, fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	return decodeHello(b[:])
}

// checkDialler is the acceptor's verdict on a dialler's hello: statusOK or
// the reason for refusing it. known reports whether an ID is a peer.
func checkDialler(h hello, self, cluster uint64, known func(uint64) bool) uint16 {
	switch {
	case h.version != protocolVersion:
		return statusBadVersion
	case h.cluster != cluster:
		return statusWrongCluster
	case h.to != self:
		return statusWrongNode
	case !known(h.from):
		return statusUnknownNode
	case !dials(h.from, self):
		return statusWrongDirection
	}
	return statusOK
}

// checkAcceptor is the dialler's check of the acceptor's answer.
func checkAcceptor(h hello, self, peer, cluster uint64) error {
	switch {
	case h.status != statusOK:
		return fmt.Errorf("%w by node %d: %s", ErrHandshake, peer, statusText(h.status))
	case h.version != protocolVersion:
		return fmt.Errorf("%w: node %d speaks version %d", ErrHandshake, peer, h.version)
	case h.cluster != cluster:
		return fmt.Errorf("%w: node %d is in cluster %d, not %d", ErrHandshake, peer, h.cluster, cluster)
	case h.from != peer || h.to != self:
		return fmt.Errorf("%w: expected node %d, answered by node %d (for node %d)", ErrHandshake, peer, h.from, h.to)
	}
	return nil
}

// dials reports whether node a dials node b: of two nodes, the one with the
// lower ID dials, so each pair shares exactly one connection.
func dials(a, b uint64) bool { return a < b }
