package replication

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// The wire format of replication and forwarding messages (drawn in doc.go).
// A message is a version byte and items back to back; each item is a kind
// byte, a u32 body length and the body. Decoders check every length
// against what is left before slicing and allocate nothing: the byte slices
// they return alias the message.

// wireVersion is the first byte of every message. A node drops messages
// of another version whole (errBadMessage) rather than misread them: nodes
// of different wire versions cannot replicate to each other. Version 2
// added push flags 8 (match epoch, with its field) and 16 (reset).
const wireVersion = 2

// Item kinds. Values are part of the protocol.
const (
	kindPush       byte = 1 // leader → follower: batches, high watermark, probes
	kindAck        byte = 2 // follower → leader: log end, or why not
	kindAppend     byte = 3 // producer node → leader: a batch to append
	kindAppendResp byte = 4 // leader → producer node: its outcome
	kindRead       byte = 5 // reader node → leader: a read
	kindReadResp   byte = 6 // leader → reader node: batches
)

// itemHeaderSize is the kind byte and the body length.
const itemHeaderSize = 5

// errBadMessage: a message or item does not decode.
var errBadMessage = errors.New("replication: malformed message")

// Push flags.
const (
	pushTruncate byte = 1 << 0 // truncate the log to prevEnd before appending
	pushProbe    byte = 1 << 1 // no data: answer with an ack of status ackHello
	pushHWOnly   byte = 1 << 2 // no data: only the high watermark
	// pushMatchEpoch: no data; the leader lacks the follower's latest
	// epoch. The follower truncates to prevEnd and to its own end of
	// matchEpoch (the leader's epoch before the follower's latest), then
	// answers ackMismatch with its new latest epoch and log end. Only
	// this flag carries the matchEpoch field.
	pushMatchEpoch byte = 1 << 3
	pushReset      byte = 1 << 4 // with pushTruncate: start the log over, empty, at prevEnd
)

// pushItem carries a leader's batches (raw, as its log stores them) for one
// partition, starting at prevEnd, and its high watermark.
type pushItem struct {
	topicID   uint64
	partition int32
	epoch     int32
	gen       uint32
	flags     byte
	prevEnd   int64
	hw        int64
	// matchEpoch is on the wire only with pushMatchEpoch: the epoch the
	// leader's log answers for the follower's latest (see matchLocked).
	matchEpoch int32
	batches    []byte

	arrived int64 // mono time a follower took it, for the stage statistics; not on the wire
}

// Ack statuses.
const (
	ackOK       byte = 0 // the follower's log ends at logEnd, all from this leader
	ackHello    byte = 1 // answer to a probe, or sent on learning of the leader
	ackMismatch byte = 2 // a push did not continue the log (lost push)
	ackStale    byte = 3 // the push's epoch is older than the follower's: epoch
)

// ackItem is a follower's answer to pushes.
type ackItem struct {
	topicID   uint64
	partition int32
	epoch     int32
	gen       uint32
	status    byte
	lastEpoch int32 // latest epoch in the follower's log
	logEnd    int64 // durable (per the durability policy) log end offset
	hw        int64 // the follower's high watermark
}

// Result codes of forwarded appends and reads.
const (
	codeOK byte = iota
	codeNotLeader
	codeRetry // the leader is not ready yet (replica missing, epoch not yet begun)
	codeNotEnoughReplicas
	codeTooLarge
	codeStorageStalled
	codeUnknownTopic
	codeOffsetOutOfRange
	codeSequence // producer sequence refused (fenced, or too old to tell)
	codeError    // any other failure
	codeInvalid
	numCodes
)

// appendItem is a batch forwarded to a partition's leader: an encoded log
// batch whose producer fields are set; the leader stamps base offset and
// epoch.
type appendItem struct {
	reqID     uint64
	attempt   uint64
	topicID   uint64
	partition int32
	epoch     int32 // the leader epoch the sender believes current
	acks      Acks
	batch     []byte
}

// appendResp answers an appendItem.
type appendResp struct {
	reqID   uint64
	attempt uint64
	code    byte
	leader  uint64 // with codeNotLeader: the leader the answering node knows
	epoch   int32  // and its epoch
	base    int64
	last    int64
}

// readItem is a read forwarded by a node that holds no replica.
type readItem struct {
	reqID      uint64
	topicID    uint64
	partition  int32
	offset     int64
	maxBytes   int64
	maxRecords int64
	maxWait    time.Duration
}

// readResp answers a readItem with raw batches (the first may start before
// the offset read).
type readResp struct {
	reqID    uint64
	code     byte
	leader   uint64
	hw       int64
	logStart int64
	batches  []byte
}

// beginItem appends the kind and a placeholder length; endItem fills it.
func beginItem(dst []byte, kind byte) ([]byte, int) {
	dst = append(dst, kind, 0, 0, 0, 0)
	return dst, len(dst)
}

func endItem(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start-4:start], uint32(len(dst)-start))
	return dst
}

func appendPush(dst []byte, p *pushItem) []byte {
	dst, s := beginItem(dst, kindPush)
	dst = binary.AppendUvarint(dst, p.topicID)
	dst = binary.AppendVarint(dst, int64(p.partition))
	dst = binary.AppendVarint(dst, int64(p.epoch))
	dst = binary.AppendUvarint(dst, uint64(p.gen))
	dst = append(dst, p.flags)
	dst = binary.AppendVarint(dst, p.prevEnd)
	dst = binary.AppendVarint(dst, p.hw)
	if p.flags&pushMatchEpoch != 0 {
		dst = binary.AppendVarint(dst, int64(p.matchEpoch))
	}
	dst = append(dst, p.batches...)
	return endItem(dst, s)
}

func appendAck(dst []byte, a *ackItem) []byte {
	dst, s := beginItem(dst, kindAck)
	dst = binary.AppendUvarint(dst, a.topicID)
	dst = binary.AppendVarint(dst, int64(a.partition))
	dst = binary.AppendVarint(dst, int64(a.epoch))
	dst = binary.AppendUvarint(dst, uint64(a.gen))
	dst = append(dst, a.status)
	dst = binary.AppendVarint(dst, int64(a.lastEpoch))
	dst = binary.AppendVarint(dst, a.logEnd)
	dst = binary.AppendVarint(dst, a.hw)
	return endItem(dst, s)
}

func appendAppend(dst []byte, a *appendItem) []byte {
	dst, s := beginItem(dst, kindAppend)
	dst = binary.AppendUvarint(dst, a.reqID)
	dst = binary.AppendUvarint(dst, a.attempt)
	dst = binary.AppendUvarint(dst, a.topicID)
	dst = binary.AppendVarint(dst, int64(a.partition))
	dst = binary.AppendVarint(dst, int64(a.epoch))
	dst = append(dst, byte(a.acks))
	dst = append(dst, a.batch...)
	return endItem(dst, s)
}

func appendAppendResp(dst []byte, a *appendResp) []byte {
	dst, s := beginItem(dst, kindAppendResp)
	dst = binary.AppendUvarint(dst, a.reqID)
	dst = binary.AppendUvarint(dst, a.attempt)
	dst = append(dst, a.code)
	dst = binary.AppendUvarint(dst, a.leader)
	dst = binary.AppendVarint(dst, int64(a.epoch))
	dst = binary.AppendVarint(dst, a.base)
	dst = binary.AppendVarint(dst, a.last)
	return endItem(dst, s)
}

func appendRead(dst []byte, r *readItem) []byte {
	dst, s := beginItem(dst, kindRead)
	dst = binary.AppendUvarint(dst, r.reqID)
	dst = binary.AppendUvarint(dst, r.topicID)
	dst = binary.AppendVarint(dst, int64(r.partition))
	dst = binary.AppendVarint(dst, r.offset)
	dst = binary.AppendVarint(dst, r.maxBytes)
	dst = binary.AppendVarint(dst, r.maxRecords)
	dst = binary.AppendVarint(dst, int64(r.maxWait))
	return endItem(dst, s)
}

func appendReadResp(dst []byte, r *readResp) []byte {
	dst, s := beginItem(dst, kindReadResp)
	dst = binary.AppendUvarint(dst, r.reqID)
	dst = append(dst, r.code)
	dst = binary.AppendUvarint(dst, r.leader)
	dst = binary.AppendVarint(dst, r.hw)
	dst = binary.AppendVarint(dst, r.logStart)
	dst = append(dst, r.batches...)
	return endItem(dst, s)
}

// splitItem cuts the first item off msg (a message's items after the
// version byte).
func splitItem(msg []byte) (kind byte, body, rest []byte, err error) {
	if len(msg) < itemHeaderSize {
		return 0, nil, nil, errBadMessage
	}
	n := binary.BigEndian.Uint32(msg[1:5])
	if uint64(n) > uint64(len(msg)-itemHeaderSize) {
		return 0, nil, nil, errBadMessage
	}
	end := itemHeaderSize + int(n)
	return msg[0], msg[itemHeaderSize:end:end], msg[end:], nil
}

// reader decodes fields in order; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

// fail records a malformed field. The error is the bare sentinel: a
// decoder of hostile input allocates nothing, not even an error.
func (r *reader) fail(string) {
	r.err = errBadMessage
	r.b = nil
}

func (r *reader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) int32(what string) int32 {
	v := r.varint(what)
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(what)
		return 0
	}
	return int32(v)
}

func (r *reader) byte(what string) byte {
	if len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// rest returns what is left: a trailing byte payload.
func (r *reader) rest() []byte {
	b := r.b
	r.b = nil
	return b
}

func decodePush(body []byte, p *pushItem) error {
	r := reader{b: body}
	p.topicID = r.uvarint("topic id")
	p.partition = r.int32("partition")
	p.epoch = r.int32("epoch")
	gen := r.uvarint("generation")
	if gen > math.MaxUint32 {
		r.fail("generation")
	}
	p.gen = uint32(gen)
	p.flags = r.byte("flags")
	p.prevEnd = r.varint("previous end")
	p.hw = r.varint("high watermark")
	p.matchEpoch = 0
	if p.flags&pushMatchEpoch != 0 {
		p.matchEpoch = r.int32("match epoch")
	}
	p.batches = r.rest()
	return r.err
}

func decodeAck(body []byte, a *ackItem) error {
	r := reader{b: body}
	a.topicID = r.uvarint("topic id")
	a.partition = r.int32("partition")
	a.epoch = r.int32("epoch")
	gen := r.uvarint("generation")
	if gen > math.MaxUint32 {
		r.fail("generation")
	}
	a.gen = uint32(gen)
	a.status = r.byte("status")
	a.lastEpoch = r.int32("last epoch")
	a.logEnd = r.varint("log end")
	a.hw = r.varint("high watermark")
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return r.err
}

func decodeAppend(body []byte, a *appendItem) error {
	r := reader{b: body}
	a.reqID = r.uvarint("request id")
	a.attempt = r.uvarint("attempt")
	a.topicID = r.uvarint("topic id")
	a.partition = r.int32("partition")
	a.epoch = r.int32("epoch")
	a.acks = Acks(int8(r.byte("acks")))
	a.batch = r.rest()
	if r.err == nil && a.acks != AcksNone && a.acks != AcksLeader && a.acks != AcksAll {
		r.fail("acks")
	}
	return r.err
}

func decodeAppendResp(body []byte, a *appendResp) error {
	r := reader{b: body}
	a.reqID = r.uvarint("request id")
	a.attempt = r.uvarint("attempt")
	a.code = r.byte("code")
	a.leader = r.uvarint("leader")
	a.epoch = r.int32("epoch")
	a.base = r.varint("base offset")
	a.last = r.varint("last offset")
	if r.err == nil && (a.code >= numCodes || len(r.b) != 0) {
		r.fail("code or trailing bytes")
	}
	return r.err
}

func decodeReadItem(body []byte, q *readItem) error {
	r := reader{b: body}
	q.reqID = r.uvarint("request id")
	q.topicID = r.uvarint("topic id")
	q.partition = r.int32("partition")
	q.offset = r.varint("offset")
	q.maxBytes = r.varint("max bytes")
	q.maxRecords = r.varint("max records")
	q.maxWait = time.Duration(r.varint("max wait"))
	if r.err == nil && (q.maxBytes < 0 || q.maxRecords < 0 || q.maxWait < 0 || len(r.b) != 0) {
		r.fail("bounds or trailing bytes")
	}
	return r.err
}

func decodeReadResp(body []byte, q *readResp) error {
	r := reader{b: body}
	q.reqID = r.uvarint("request id")
	q.code = r.byte("code")
	q.leader = r.uvarint("leader")
	q.hw = r.varint("high watermark")
	q.logStart = r.varint("log start")
	q.batches = r.rest()
	if r.err == nil && q.code >= numCodes {
		r.fail("code")
	}
	return r.err
}

// forEachItem calls fn for each item of msg (a whole message after the mux
// tag). It stops at the first malformed item or error of fn.
func forEachItem(msg []byte, fn func(kind byte, body []byte) error) error {
	if len(msg) == 0 || msg[0] != wireVersion {
		return errBadMessage
	}
	for rest := msg[1:]; len(rest) > 0; {
		kind, body, r, err := splitItem(rest)
		if err != nil {
			return err
		}
		if err := fn(kind, body); err != nil {
			return err
		}
		rest = r
	}
	return nil
}
