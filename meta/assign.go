package meta

import "fmt"

// MaxTopicNameLen is the longest name CreateTopic takes. Kafka allows 249;
// a replica's directory is named "<topic>-<topic ID>-<partition>", and
// with an ID of up to 20 digits and a partition of up to 5, a longer name
// would pass the 255 bytes a file name may have on Linux.
const MaxTopicNameLen = 255 - len("-18446744073709551615-65535")

// maxStoredTopicNameLen is the longest name of a topic that may exist:
// names up to Kafka's 249 were taken before MaxTopicNameLen, and their
// commands and snapshots must still apply and decode, their topics be
// found and deleted (their replicas open on disk only while the directory
// name fits).
const maxStoredTopicNameLen = 249

// ValidTopicName reports, as an error wrapping ErrInvalidArgument, why name
// is not a topic name: 1 to 249 characters of [a-zA-Z0-9._-], not "." or
// "..". CreateTopic takes at most MaxTopicNameLen (228) of them.
func ValidTopicName(name string) error {
	if len(name) == 0 || len(name) > maxStoredTopicNameLen || name == "." || name == ".." {
		return fmt.Errorf("%w: topic name %q", ErrInvalidArgument, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: topic name %q has %q", ErrInvalidArgument, name, c)
		}
	}
	return nil
}

// liveNodes returns the eligible nodes in ID order.
func liveNodes(s *State) []uint64 {
	var out []uint64
	for _, id := range s.nodeIDs() {
		if s.nodes[id].Eligible() {
			out = append(out, id)
		}
	}
	return out
}

// withDefaults fills in a topic config's defaults and checks it against the
// number of live nodes.
func withDefaults(c TopicConfig, live int) (TopicConfig, error) {
	if c.Partitions < 1 || c.Partitions > 1<<16 {
		return c, fmt.Errorf("%w: %d partitions", ErrInvalidArgument, c.Partitions)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = min(3, live)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > live {
		return c, fmt.Errorf("%w: replication factor %d, %d live nodes", ErrNotEnoughNodes, c.ReplicationFactor, live)
	}
	if c.MinInSyncReplicas == 0 {
		c.MinInSyncReplicas = c.ReplicationFactor/2 + 1
	}
	if c.MinInSyncReplicas < 1 || c.MinInSyncReplicas > c.ReplicationFactor {
		return c, fmt.Errorf("%w: min in-sync replicas %d for replication factor %d", ErrInvalidArgument, c.MinInSyncReplicas, c.ReplicationFactor)
	}
	if c.RetentionBytes < 0 || c.RetentionTime < 0 {
		return c, fmt.Errorf("%w: negative retention", ErrInvalidArgument)
	}
	return c, nil
}

// assign places rf replicas of each of n partitions on nodes (sorted IDs):
// partition p gets nodes[(start+p+j) mod len] for j < rf. Within a topic
// every node holds the same number of replicas and preferred leaderships
// (±1); start rotates from topic to topic so that small topics do not all
// begin on the first node. Every partition starts with its first replica as
// leader and every replica in the ISR.
func assign(nodes []uint64, n int32, rf int, start uint64) []Partition {
	ps := make([]Partition, n)
	k := uint64(len(nodes))
	for p := range ps {
		reps := make([]uint64, rf)
		for j := range reps {
			reps[j] = nodes[(start+uint64(p)+uint64(j))%k]
		}
		ps[p] = Partition{Partition: int32(p), Replicas: reps,
			ISR: append([]uint64(nil), reps...), Leader: reps[0]}
	}
	return ps
}

// validNewTopicName is ValidTopicName for a topic to create: at most
// MaxTopicNameLen characters.
func validNewTopicName(name string) error {
	if len(name) > MaxTopicNameLen {
		return fmt.Errorf("%w: topic name of %d characters, at most %d", ErrInvalidArgument, len(name), MaxTopicNameLen)
	}
	return ValidTopicName(name)
}
