package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// checkpoint is what the log persists so that Open need not scan the wal:
// the state of the log up to wal position CoverPos. See doc.go for the
// file format.
type checkpoint struct {
	CoverPos    int64 // wal position the checkpoint covers up to (a frame boundary)
	CoverOffset int64 // log end offset at CoverPos
	HighWater   int64 // high watermark when written
	StartOffset int64 // log start offset when written
	Epochs      []EpochEntry
	Index       []indexEntry
}

const (
	checkpointMagic   = "RLOGCKP\x00"
	checkpointVersion = 1
	checkpointFixed   = 8 + 4 + 4*8 + 4 + 4 // magic, version, 4 int64s, counts
	epochEntrySize    = 4 + 8
	indexEntrySize    = 3 * 8
)

// encodeCheckpoint serializes c; the last 4 bytes are a CRC-32C of the
// rest.
func encodeCheckpoint(c *checkpoint) []byte {
	n := checkpointFixed + len(c.Epochs)*epochEntrySize + len(c.Index)*indexEntrySize + 4
	b := make([]byte, 0, n)
	be := binary.BigEndian
	b = append(b, checkpointMagic...)
	b = be.AppendUint32(b, checkpointVersion)
	for _, v := range []int64{c.CoverPos, c.CoverOffset, c.HighWater, c.StartOffset} {
		b = be.AppendUint64(b, uint64(v))
	}
	b = be.AppendUint32(b, uint32(len(c.Epochs)))
	b = be.AppendUint32(b, uint32(len(c.Index)))
	for _, e := range c.Epochs {
		b = be.AppendUint32(b, uint32(e.Epoch))
		b = be.AppendUint64(b, uint64(e.StartOffset))
	}
	for _, e := range c.Index {
		b = be.AppendUint64(b, uint64(e.Offset))
		b = be.AppendUint64(b, uint64(e.Pos))
		b = be.AppendUint64(b, uint64(e.MaxTs))
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeCheckpoint parses and checks a checkpoint file: checksum, sizes
// and the orderings the log relies on. Errors wrap ErrBadCheckpoint.
func decodeCheckpoint(b []byte) (*checkpoint, error) {
	bad := func(what string) (*checkpoint, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadCheckpoint, what)
	}
	if len(b) < checkpointFixed+4 || string(b[:8]) != checkpointMagic {
		return bad("too short or wrong magic")
	}
	be := binary.BigEndian
	body, sum := b[:len(b)-4], be.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return bad("checksum mismatch")
	}
	if v := be.Uint32(b[8:]); v != checkpointVersion {
		return bad(fmt.Sprintf("unknown version %d", v))
	}
	c := &checkpoint{
		CoverPos:    int64(be.Uint64(b[12:])),
		CoverOffset: int64(be.Uint64(b[20:])),
		HighWater:   int64(be.Uint64(b[28:])),
		StartOffset: int64(be.Uint64(b[36:])),
	}
	ne, ni := int64(be.Uint32(b[44:])), int64(be.Uint32(b[48:]))
	if int64(len(body)) != checkpointFixed+ne*epochEntrySize+ni*indexEntrySize {
		return bad("entry counts do not match the size")
	}
	if c.CoverPos < 0 || c.StartOffset < 0 || c.StartOffset > c.CoverOffset ||
		c.HighWater < 0 || c.HighWater > c.CoverOffset {
		return bad("inconsistent positions or offsets")
	}
	p := b[checkpointFixed:]
	c.Epochs = make([]EpochEntry, ne)
	for i := range c.Epochs {
		c.Epochs[i] = EpochEntry{Epoch: int32(be.Uint32(p)), StartOffset: int64(be.Uint64(p[4:]))}
		p = p[epochEntrySize:]
		if i > 0 && (c.Epochs[i].Epoch <= c.Epochs[i-1].Epoch || c.Epochs[i].StartOffset < c.Epochs[i-1].StartOffset) {
			return bad("epochs out of order")
		}
	}
	c.Index = make([]indexEntry, ni)
	for i := range c.Index {
		c.Index[i] = indexEntry{Offset: int64(be.Uint64(p)), Pos: int64(be.Uint64(p[8:])), MaxTs: int64(be.Uint64(p[16:]))}
		p = p[indexEntrySize:]
		e := c.Index[i]
		if e.Pos >= c.CoverPos || e.Offset >= c.CoverOffset || (i > 0 && (e.Offset <= c.Index[i-1].Offset || e.Pos <= c.Index[i-1].Pos)) {
			return bad("index entries out of order or beyond the covered range")
		}
	}
	return c, nil
}
