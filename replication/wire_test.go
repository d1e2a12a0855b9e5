package replication

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// message wraps items in a message as a peer sends it (without the mux tag).
func message(items ...[]byte) []byte {
	msg := []byte{wireVersion}
	for _, it := range items {
		msg = append(msg, it...)
	}
	return msg
}

func TestWireRoundTrip(t *testing.T) {
	push := pushItem{topicID: 7, partition: 3, epoch: 9, gen: 4, flags: pushTruncate, prevEnd: 100, hw: 90, batches: []byte("raw")}
	match := pushItem{topicID: 7, partition: 3, epoch: 9, gen: 5, flags: pushMatchEpoch, prevEnd: 100, matchEpoch: 6, batches: []byte{}}
	ack := ackItem{topicID: 7, partition: 3, epoch: 9, gen: 4, status: ackMismatch, lastEpoch: 8, logEnd: 95, hw: 90}
	app := appendItem{reqID: 11, attempt: 2, topicID: 7, partition: 3, epoch: 9, acks: AcksAll, batch: []byte("batch")}
	resp := appendResp{reqID: 11, attempt: 2, code: codeNotLeader, leader: 2, epoch: 10, base: -1, last: -1}
	read := readItem{reqID: 12, topicID: 7, partition: 3, offset: 5, maxBytes: 1 << 20, maxRecords: 10, maxWait: time.Second}
	rresp := readResp{reqID: 12, code: codeOK, leader: 1, hw: 50, logStart: 0, batches: []byte("batches")}
	msg := message(appendPush(nil, &push), appendPush(nil, &match), appendAck(nil, &ack), appendAppend(nil, &app),
		appendAppendResp(nil, &resp), appendRead(nil, &read), appendReadResp(nil, &rresp))
	var got []any
	err := forEachItem(msg, func(kind byte, body []byte) error {
		var v any
		var err error
		switch kind {
		case kindPush:
			var x pushItem
			err, v = decodePush(body, &x), x
		case kindAck:
			var x ackItem
			err, v = decodeAck(body, &x), x
		case kindAppend:
			var x appendItem
			err, v = decodeAppend(body, &x), x
		case kindAppendResp:
			var x appendResp
			err, v = decodeAppendResp(body, &x), x
		case kindRead:
			var x readItem
			err, v = decodeReadItem(body, &x), x
		case kindReadResp:
			var x readResp
			err, v = decodeReadResp(body, &x), x
		}
		got = append(got, v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{push, match, ack, app, resp, read, rresp}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestWireRejects(t *testing.T) {
	ack := appendAck(nil, &ackItem{topicID: 1, logEnd: 5})
	for name, msg := range map[string][]byte{
		"empty":           nil,
		"bad version":     {9},
		"version 1":       append([]byte{1}, ack...), // before push flags 8 and 16
		"short header":    {wireVersion, kindAck, 0, 0},
		"length too long": append([]byte{wireVersion}, append(ack[:1:1], 0xff, 0xff, 0xff, 0xff)...),
		"truncated body":  message(ack[:len(ack)-1]),
	} {
		err := forEachItem(msg, func(kind byte, body []byte) error {
			var a ackItem
			return decodeAck(body, &a)
		})
		if !errors.Is(err, errBadMessage) {
			t.Errorf("%s: err = %v, want errBadMessage", name, err)
		}
	}
	// A trailing byte after an ack's fields, a bad code, bad acks.
	bad := append(bytes.Clone(ack), 0)
	bad[4]++
	var a ackItem
	if err := forEachItem(message(bad), func(_ byte, body []byte) error { return decodeAck(body, &a) }); err == nil {
		t.Error("ack with a trailing byte accepted")
	}
	var r appendResp
	if err := decodeAppendResp(appendAppendResp(nil, &appendResp{code: numCodes})[itemHeaderSize:], &r); err == nil {
		t.Error("unknown result code accepted")
	}
	var ap appendItem
	if err := decodeAppend(appendAppend(nil, &appendItem{acks: 5})[itemHeaderSize:], &ap); err == nil {
		t.Error("unknown acks accepted")
	}
}

// fuzzItems decodes every item of msg with the decoder of its kind.
func fuzzItems(t *testing.T, msg []byte) {
	_ = forEachItem(msg, func(kind byte, body []byte) error {
		switch kind {
		case kindPush:
			var x, y pushItem
			if decodePush(body, &x) == nil {
				if err := decodePush(appendPush(nil, &x)[itemHeaderSize:], &y); err != nil || !reflect.DeepEqual(x, y) {
					t.Fatalf("push %+v re-encodes to %+v, %v", x, y, err)
				}
			}
		case kindAck:
			var x, y ackItem
			if decodeAck(body, &x) == nil {
				if err := decodeAck(appendAck(nil, &x)[itemHeaderSize:], &y); err != nil || x != y {
					t.Fatalf("ack %+v re-encodes to %+v, %v", x, y, err)
				}
			}
		case kindAppend:
			var x appendItem
			_ = decodeAppend(body, &x)
		case kindAppendResp:
			var x appendResp
			_ = decodeAppendResp(body, &x)
		case kindRead:
			var x readItem
			_ = decodeReadItem(body, &x)
		case kindReadResp:
			var x readResp
			_ = decodeReadResp(body, &x)
		}
		return nil
	})
}

func seedMessages() [][]byte {
	return [][]byte{
		message(appendPush(nil, &pushItem{topicID: 1, partition: 2, epoch: 3, gen: 4, prevEnd: 5, hw: 6, batches: []byte{1, 2, 3}})),
		message(appendPush(nil, &pushItem{topicID: 1, partition: 2, epoch: 3, gen: 4, flags: pushMatchEpoch, prevEnd: 5, matchEpoch: 2})),
		message(appendAck(nil, &ackItem{topicID: 1, status: ackOK, lastEpoch: -1, logEnd: 5, hw: 5})),
		message(appendAppend(nil, &appendItem{reqID: 1, acks: AcksLeader, batch: []byte{9}}), appendAppendResp(nil, &appendResp{reqID: 1})),
		message(appendRead(nil, &readItem{reqID: 1, offset: 3, maxWait: time.Millisecond}), appendReadResp(nil, &readResp{reqID: 1, batches: []byte{7}})),
		{wireVersion, kindPush, 0xff, 0xff, 0xff, 0xff},
		{wireVersion, kindAck, 0, 0, 0, 3, 0x80, 0x80, 0x80},
	}
}

// FuzzWire runs every decoder on hostile messages: no panic, no
// allocation driven by a length field (the decoders only slice).
func FuzzWire(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) { fuzzItems(t, msg) })
}

func TestDecodersAllocateNothing(t *testing.T) {
	msgs := seedMessages()
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			_ = forEachItem(m, func(kind byte, body []byte) error {
				var p pushItem
				var a ackItem
				var ap appendItem
				var r readResp
				_ = decodePush(body, &p)
				_ = decodeAck(body, &a)
				_ = decodeAppend(body, &ap)
				_ = decodeReadResp(body, &r)
				return nil
			})
		}
	})
	if allocs > 0 {
		t.Fatalf("decoders allocate %.1f times per run", allocs)
	}
}
