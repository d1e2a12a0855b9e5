package meta

import (
	"strings"
	"testing"
)

// A topic created under the previous limit (249) by a log entry or held in
// a snapshot written by the previous version must still apply and decode;
// only new CreateTopic calls are held to MaxTopicNameLen.
func TestOldLongTopicNameReplays(t *testing.T) {
	name := strings.Repeat("a", 240) // valid before (<= 249); "<name>-12-0" = 245 bytes fits a file name
	f := newFSM(t, 1, 2, 3)
	r := f.do(&command{Op: opCreateTopic, Topic: name, Config: &TopicConfig{Partitions: 1}})
	if r.err != nil {
		t.Errorf("replaying an old CreateTopic entry of a %d-char name: %v", len(name), r.err)
	}
	// A snapshot the old version wrote with such a topic.
	old := newFSM(t, 1, 2, 3)
	old.ok(&command{Op: opCreateTopic, Topic: "x", Config: &TopicConfig{Partitions: 1}})
	snap := encodeSnapshot(old.s, old.offs)
	snap2 := []byte(strings.Replace(string(snap), `"x"`, `"`+name+`"`, -1))
	if _, _, err := decodeSnapshot(snap2); err != nil {
		t.Errorf("decoding an old snapshot holding a %d-char topic: %v", len(name), err)
	}
	if err := validNewTopicName(name); err == nil {
		t.Errorf("a new topic of %d characters was taken", len(name))
	}
}
