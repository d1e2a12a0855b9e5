package replication

import (
	"context"
	"testing"
	"time"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
)

// FuzzHandlers feeds hostile messages, as from a peer, to a live node's
// HandleReplication and HandleForward: decoded items reach the replicas,
// the producers and the read path of a running 3-node cluster. No input
// may panic, block the handler, or keep the cluster from closing (the
// cluster's Cleanup closes it, goleak checks what is left). The seeds are
// well-formed items of the cluster's own topic: pushes of every kind,
// acks of every status, forwarded appends and reads, and answers.
func FuzzHandlers(f *testing.F) {
	c := newTCluster(f, 3, nil)
	topic := c.createTopic("t", meta.TopicConfig{Partitions: 2, ReplicationFactor: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, _, err := c.nodes[c.leader("t", 0)].rep.Append(ctx, "t", 0, rec("a"), AcksAll); err != nil {
		f.Fatal(err)
	}
	id := topic.ID
	batch, err := log.EncodeBatch(nil, log.BatchHeader{LeaderEpoch: 1, ProducerID: 2, ProducerEpoch: 1}, rec("x"), time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{
		message(appendPush(nil, &pushItem{topicID: id, epoch: 1, gen: 1, prevEnd: 1, hw: 1, batches: batch})),
		message(appendPush(nil, &pushItem{topicID: id, epoch: 1, gen: 1, flags: pushTruncate, prevEnd: 0, hw: 0})),
		message(appendPush(nil, &pushItem{topicID: id, epoch: 2, gen: 2, flags: pushMatchEpoch, prevEnd: 1, matchEpoch: 1})),
		message(appendPush(nil, &pushItem{topicID: id, epoch: 1, gen: 3, flags: pushHWOnly, hw: 5})),
		message(appendPush(nil, &pushItem{topicID: id, partition: 1, epoch: 9, gen: 1, flags: pushProbe})),
		message(appendPush(nil, &pushItem{topicID: id, epoch: 1, gen: 1, flags: pushReset, prevEnd: 100})),
		message(appendAck(nil, &ackItem{topicID: id, epoch: 0, gen: 1, status: ackOK, lastEpoch: 0, logEnd: 1, hw: 1})),
		message(appendAck(nil, &ackItem{topicID: id, epoch: 0, status: ackHello, lastEpoch: 0, logEnd: 50})),
		message(appendAck(nil, &ackItem{topicID: id, epoch: 0, gen: 1, status: ackMismatch, lastEpoch: -1, logEnd: 0})),
		message(appendAck(nil, &ackItem{topicID: id, epoch: 7, status: ackStale, lastEpoch: 7, logEnd: 3})),
		message(appendAppend(nil, &appendItem{reqID: 1, attempt: 1, topicID: id, acks: AcksAll, batch: batch})),
		message(appendAppendResp(nil, &appendResp{reqID: 1, attempt: 1, code: codeOK, base: 0, last: 0})),
		message(appendRead(nil, &readItem{reqID: 2, topicID: id, offset: 0, maxBytes: 1 << 20, maxRecords: 5})),
		message(appendRead(nil, &readItem{reqID: 3, topicID: id, partition: 1, offset: 9, maxWait: 50 * time.Millisecond})),
		message(appendReadResp(nil, &readResp{reqID: 2, code: codeOK, hw: 1, batches: batch})),
	} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, from uint8, msg []byte) {
		to := c.ids[0]
		sender := c.ids[1+int(from)%(len(c.ids)-1)]
		n := c.nodes[to]
		n.rep.HandleReplication(sender, msg)
		n.rep.HandleForward(sender, msg)
	})
}
