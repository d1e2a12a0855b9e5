package log

import "fmt"

// UndefinedEpoch is the epoch (and UndefinedOffset the offset) that
// EndOffsetForEpoch answers when it knows nothing about the asked epoch, as
// Kafka's OffsetsForLeaderEpoch does.
const (
	UndefinedEpoch  int32 = -1
	UndefinedOffset int64 = -1
)

// EpochEntry says that records from StartOffset on were appended by the
// leader of Epoch (until the next entry's StartOffset).
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is the leader-epoch cache: entries with strictly increasing
// epochs and non-decreasing start offsets. Pure data; the Log locks it.
type epochCache struct {
	entries []EpochEntry
}

func (c *epochCache) latest() (EpochEntry, bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// assign records that epoch starts at offset. An epoch equal to the
// latest is a no-op; a lower one is ErrStaleEpoch. An offset below the
// latest entry's start breaks the cache's order and is refused too.
func (c *epochCache) assign(epoch int32, offset int64) error {
	if epoch < 0 {
		return fmt.Errorf("%w: negative epoch %d", ErrStaleEpoch, epoch)
	}
	last, ok := c.latest()
	switch {
	case !ok:
	case epoch == last.Epoch:
		return nil
	case epoch < last.Epoch:
		return fmt.Errorf("%w: epoch %d after epoch %d", ErrStaleEpoch, epoch, last.Epoch)
	case offset < last.StartOffset:
		return fmt.Errorf("%w: epoch %d starts at %d, before epoch %d's start %d",
			ErrStaleEpoch, epoch, offset, last.Epoch, last.StartOffset)
	}
	c.entries = append(c.entries, EpochEntry{Epoch: epoch, StartOffset: offset})
	return nil
}

// endOffsetFor answers Kafka's OffsetsForLeaderEpoch for epoch on a log
// whose end offset is leo: the largest epoch <= epoch the cache knows and
// the start offset of the first epoch after it (leo for the latest epoch).
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	last, ok := c.latest()
	if epoch == UndefinedEpoch || !ok {
		return UndefinedEpoch, UndefinedOffset
	}
	if epoch == last.Epoch {
		return epoch, leo
	}
	// higher: the first entry with Epoch > epoch.
	higher := len(c.entries)
	for i, e := range c.entries {
		if e.Epoch > epoch {
			higher = i
			break
		}
	}
	if higher == len(c.entries) {
		return UndefinedEpoch, UndefinedOffset
	}
	if higher == 0 {
		return epoch, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// truncateFromEnd drops the entries that start at or after offset: the
// log now ends at offset.
func (c *epochCache) truncateFromEnd(offset int64) {
	i := len(c.entries)
	for i > 0 && c.entries[i-1].StartOffset >= offset {
		i--
	}
	c.entries = c.entries[:i]
}

// truncateFromStart moves the cache's first entry to offset, the new log
// start: entries that end at or before offset go, the one spanning it is
// moved to start there.
func (c *epochCache) truncateFromStart(offset int64) {
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].StartOffset <= offset {
		i++
	}
	if i < len(c.entries) && c.entries[i].StartOffset < offset {
		c.entries[i].StartOffset = offset
	}
	c.entries = append(c.entries[:0], c.entries[i:]...)
}

// snapshot returns a copy of the entries.
func (c *epochCache) snapshot() []EpochEntry { return append([]EpochEntry(nil), c.entries...) }

// epochAt returns the epoch of the records at offset, or UndefinedEpoch.
func (c *epochCache) epochAt(offset int64) int32 {
	e := UndefinedEpoch
	for _, x := range c.entries {
		if x.StartOffset > offset {
			break
		}
		e = x.Epoch
	}
	return e
}

// assignBatch is assign for a batch found in the log (a follower's append,
// recovery): entries at or after the batch's base offset with a higher
// epoch hold no records (BeginEpoch made them) and give way to it.
func (c *epochCache) assignBatch(epoch int32, base int64) error {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= base && c.entries[n-1].Epoch > epoch {
		n--
	}
	c.entries = c.entries[:n]
	return c.assign(epoch, base)
}
