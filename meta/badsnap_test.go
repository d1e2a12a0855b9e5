package meta

import (
	"testing"
	"testing/synctest"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// One MsgSnap whose data does not decode, in the leader's name (a forged
// message, or a peer of another format version), is dropped: were it
// persisted, the node would stop, and every later Open of its Dir fail.
func TestUndecodableSnapshotDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, true)
		l := c.leader()
		c.registered()
		f := otherThan(c.peers, l)[0]
		// A term above the group's (the node's own is the driver's to
		// read): raft takes it from the leader named and installs it.
		const term = 1 << 20
		m := &pb.Message{Type: pb.MsgSnap.Enum(), From: proto.Uint64(l), To: proto.Uint64(f), Term: proto.Uint64(term),
			Snapshot: &pb.Snapshot{Data: []byte{1, '{'}, Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(1 << 20), Term: proto.Uint64(term),
				ConfState: &pb.ConfState{Voters: c.peers}}}}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[f].HandleRaft(l, b)
		time.Sleep(time.Second)
		if err := c.nodes[f].Err(); err != nil {
			t.Fatalf("node %d stopped after one bad snapshot: %v", f, err)
		}
		n := c.nodes[f]
		delete(c.nodes, f)
		_ = c.eps[f].Close()
		_ = n.Close()
		cfg, _ := c.config(f)
		n2, err := Open(cfg)
		if err != nil {
			t.Fatalf("reopen after one bad message: %v", err)
		}
		_ = n2.Close()
	})
}
