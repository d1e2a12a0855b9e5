package meta

import (
	"encoding/json"
	"fmt"
)

// op names a command of the replicated state machine. Values are part of
// the log format and never change meaning.
type op uint8

const (
	opRegister     op = 1  // a node (re)starts: new incarnation
	opFence        op = 2  // controller: a session expired
	opUnfence      op = 3  // controller: a fenced incarnation heartbeats again
	opCreateTopic  op = 4  // a client creates a topic
	opDeleteTopic  op = 5  // a client deletes a topic
	opElectLeader  op = 6  // controller: new leader for one partition
	opAlterISR     op = 7  // a partition leader changes its ISR
	opDrain        op = 8  // a node shuts down: move its leaderships
	opSetUnhealthy op = 9  // a node reports (un)healthy storage
	opCommitOffset op = 10 // a consumer group commits an offset
)

// commandVersion is the first byte of every encoded command.
const commandVersion = 1

// command is one entry of the metadata log. Which fields matter depends on
// Op. From, Session and Seq identify the proposer's request: it learns the
// outcome by them, and apply skips a request applied before (dedupTable).
type command struct {
	Op          op     `json:"op"`
	From        uint64 `json:"from,omitempty"`
	Seq         uint64 `json:"seq,omitempty"`
	Session     uint64 `json:"sess,omitempty"` // proposer's registration nonce
	Node        uint64 `json:"node,omitempty"`
	Incarnation uint64 `json:"inc,omitempty"`
	Nonce       uint64 `json:"nonce,omitempty"`
	Topic       string `json:"topic,omitempty"`
	// TopicID, when set, is the ID of the topic Topic names: a command
	// for a topic since deleted (and maybe created again) applies to no
	// other of its name. Commands logged before it existed carry none.
	TopicID        uint64       `json:"tid,omitempty"`
	Config         *TopicConfig `json:"config,omitempty"`
	Partition      int32        `json:"p,omitempty"`
	LeaderEpoch    int32        `json:"lepoch,omitempty"`
	PartitionEpoch int32        `json:"pepoch,omitempty"`
	Leader         uint64       `json:"leader,omitempty"`
	ISR            []uint64     `json:"isr,omitempty"`
	Group          string       `json:"group,omitempty"`
	Offset         int64        `json:"offset,omitempty"`
	Flag           bool         `json:"flag,omitempty"`
}

// encodeCommand returns the log form of c:
//
//	+---------+------------------+
//	| version |  JSON of command |
//	+---------+------------------+
//	   1 B
func encodeCommand(c *command) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("meta: command does not encode: %v", err)) // plain struct: cannot happen
	}
	return append([]byte{commandVersion}, b...)
}

// decodeCommand parses what encodeCommand produced.
func decodeCommand(b []byte) (*command, error) {
	if len(b) < 2 || b[0] != commandVersion {
		return nil, fmt.Errorf("%w: command of %d bytes, version byte %v", ErrCorrupt, len(b), b[:min(1, len(b))])
	}
	c := new(command)
	if err := json.Unmarshal(b[1:], c); err != nil {
		return nil, fmt.Errorf("%w: command: %v", ErrCorrupt, err)
	}
	if c.Op == 0 || c.Op > opCommitOffset {
		return nil, fmt.Errorf("%w: unknown op %d", ErrCorrupt, c.Op)
	}
	return c, nil
}
