package meta

import (
	"bytes"
	"testing"
)

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []*command{
		{Op: opRegister, Node: 1, Nonce: 5},
		{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 3}, From: 2, Seq: 9},
		{Op: opAlterISR, Topic: "t", ISR: []uint64{1, 2}, LeaderEpoch: 3, PartitionEpoch: 4},
		{Op: opCommitOffset, Group: "g", Topic: "t", Offset: 10},
	} {
		f.Add(encodeCommand(c))
	}
	f.Add([]byte{})
	f.Add([]byte{1, '{', '}'})
	f.Add([]byte{2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			return
		}
		// A command that decodes applies without panicking.
		fs := newFSM(t, 1, 2, 3)
		fs.do(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 2}})
		fs.do(c)
		c2, err := decodeCommand(encodeCommand(c))
		if err != nil || !bytes.Equal(encodeCommand(c2), encodeCommand(c)) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	fs := newFSM(f, 1, 2, 3)
	fs.do(&command{Op: opCreateTopic, Topic: "t", Config: &TopicConfig{Partitions: 2}})
	fs.do(&command{Op: opCommitOffset, Group: "g", Topic: "t", Offset: 3})
	f.Add(encodeSnapshot(fs.s, fs.offs))
	f.Add(encodeSnapshot(emptyState(), newOffsetTable()))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, offs, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again := encodeSnapshot(s, offs)
		s2, offs2, err := decodeSnapshot(again)
		if err != nil || !bytes.Equal(encodeSnapshot(s2, offs2), again) {
			t.Fatalf("snapshot does not round-trip: %v", err)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(appendHeartbeat(nil, heartbeatMsg{node: 1, inc: 2}))
	f.Add(appendHeartbeat(nil, heartbeatMsg{node: 1 << 60, inc: 1 << 62}))
	f.Add([]byte{1})
	f.Add(appendMeta(nil, metaMsg{kind: metaAsk, node: 3, val: 1 << 40}))
	f.Add(appendMeta(nil, metaMsg{kind: metaApplied, node: 2, val: 7}))
	f.Add(appendMeta(nil, metaMsg{kind: metaHeartbeatAck, node: 1, val: 123456789}))
	f.Add(appendHeartbeat(nil, heartbeatMsg{node: 3, inc: 2, sent: 1 << 40}))
	f.Add([]byte{metaHeartbeat, 1, 2}) // a heartbeat without its time
	f.Add([]byte{9, 1, 1})
	f.Add([]byte{0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if m.kind < metaHeartbeat || m.kind > metaHeartbeatAck || m.kind != metaHeartbeat && m.sent != 0 {
			t.Fatalf("%x decoded as kind %d", b, m.kind)
		}
		// Overlong varints decode too; the canonical form round-trips.
		if m2, err := decodeMeta(appendMeta(nil, m)); err != nil || m2 != m {
			t.Fatalf("meta message %x does not round-trip: %v", b, err)
		}
	})
}
