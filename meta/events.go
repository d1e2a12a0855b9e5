package meta

// EventType names what an Event reports.
type EventType uint8

// The event types.
const (
	// EventResync: the watcher fell behind and events were lost. Rebuild
	// whatever you derive from the metadata from Event.State.
	EventResync EventType = iota
	// EventTopicCreated: Topic (with TopicID) now exists.
	EventTopicCreated
	// EventTopicDeleted: Topic (with TopicID) is gone.
	EventTopicDeleted
	// EventPartitionChanged: the leader, epochs or ISR of Topic/Partition
	// changed.
	EventPartitionChanged
	// EventNodeRegistered: Node started a new incarnation.
	EventNodeRegistered
	// EventNodeFenced: Node's session expired.
	EventNodeFenced
	// EventNodeUnfenced: Node's session is alive again.
	EventNodeUnfenced
	// EventNodeChanged: Node's draining or unhealthy flag changed.
	EventNodeChanged
)

var eventNames = [...]string{"resync", "topic-created", "topic-deleted",
	"partition-changed", "node-registered", "node-fenced", "node-unfenced", "node-changed"}

// String returns the event type's name, e.g. "topic-created".
func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "unknown"
}

// Event is one change of the metadata, delivered in apply order.
type Event struct {
	Type      EventType
	Index     uint64 // raft index of the command that caused it
	Topic     string
	TopicID   uint64
	Partition int32
	Node      uint64
	// State is the metadata right after the command that caused the event:
	// look up the new partition record or node here.
	State *State
}
