package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/replog/replog/transport"
	"github.com/replog/replog/wal"
)

// nemesis applies the schedule's faults one after another: start, hold,
// heal, gap. It stops at ctx's end, healing the fault in force. The waits
// are the schedule's pacing (timers), not synchronisation.
func (h *harness) nemesis(ctx context.Context, s Schedule) {
	for i, f := range s.Faults {
		if ctx.Err() != nil {
			return
		}
		heal := h.inject(i, f)
		pause(ctx, f.Hold)
		heal()
		pause(ctx, f.Gap)
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inject starts fault i and returns what heals it.
func (h *harness) inject(i int, f Fault) (heal func()) {
	nothing := func() {}
	h.mu.Lock()
	h.mu.faults[f.Kind]++
	h.mu.Unlock()
	net := h.lc.Network()
	switch f.Kind {
	case Kill, KillLeader:
		nodes := f.Nodes
		if f.Kind == KillLeader {
			if nodes = h.leader(i); nodes == nil {
				return nothing
			}
		}
		h.stopNodes(i, "kill", nodes)
		return func() { h.restartNodes(i, nodes) }
	case Crash, CrashAll:
		nodes := f.Nodes
		if f.Kind == CrashAll {
			nodes = h.nodes()
		}
		for _, id := range nodes {
			h.memFS(id).Crash(wal.CrashOptions{Torn: f.Torn, Seed: f.Seed + id})
		}
		h.stopNodes(i, fmt.Sprintf("crash (torn %v)", f.Torn), nodes)
		return func() { h.restartNodes(i, nodes) }
	case Isolate, IsolateLeader:
		nodes := f.Nodes
		if f.Kind == IsolateLeader {
			if nodes = h.leader(i); nodes == nil {
				return nothing
			}
		}
		net.Isolate(nodes[0])
		h.note(i, nil, "isolate n%d", nodes[0])
		return func() { net.Heal(); h.note(i, nil, "heal network") }
	case Split:
		net.Partition(f.Nodes)
		h.note(i, nil, "split %v from the rest", f.Nodes)
		return func() { net.Heal(); h.note(i, nil, "heal network") }
	case Links:
		for _, l := range f.Links {
			net.SetLink(l.From, l.To, transport.LinkFaults{Drop: l.Drop, Delay: l.Delay})
		}
		h.note(i, nil, "faulty links %v", f.Links)
		return func() { net.Heal(); h.note(i, nil, "heal network") }
	case Stall:
		s := h.stallFS(f.Nodes[0])
		s.Stall()
		h.note(i, nil, "stall syncs of n%d", f.Nodes[0])
		return func() { s.Release(); h.note(i, nil, "release syncs of n%d", f.Nodes[0]) }
	case Corrupt:
		id := f.Nodes[0]
		h.stopNodes(i, "stop before corruption", f.Nodes)
		where, err := flipBit(h.memFS(id), f.Seed)
		h.note(i, err, "flip a bit of n%d: %s", id, where)
		if err == nil {
			h.mu.Lock()
			h.mu.corrupted[id] = true
			h.mu.Unlock()
		}
		return func() { h.restartNodes(i, f.Nodes) }
	}
	panic(fmt.Sprintf("chaos: unknown fault %v", f.Kind))
}

// leader resolves the partition's leader as a running node knows it; nil
// when none is known (the fault is skipped).
func (h *harness) leader(i int) []uint64 {
	for _, id := range h.nodes() {
		if !h.lc.Running(id) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := h.lc.Node(id).Topic(ctx, topic)
		cancel()
		if err == nil && len(info.Partitions) == 1 && info.Partitions[0].Leader != 0 {
			return []uint64{info.Partitions[0].Leader}
		}
	}
	h.note(i, nil, "no leader known: fault skipped")
	return nil
}

func (h *harness) stopNodes(i int, what string, nodes []uint64) {
	for _, id := range nodes {
		if !h.lc.Running(id) {
			continue
		}
		err := h.lc.Stop(id)
		h.note(i, err, "%s n%d", what, id)
	}
}

// restartNodes restarts the stopped ones among nodes, in parallel (a
// restart waits for its registration, which needs a quorum).
func (h *harness) restartNodes(i int, nodes []uint64) {
	var wg sync.WaitGroup
	for _, id := range nodes {
		if h.lc.Running(id) {
			continue
		}
		wg.Go(func() {
			err := h.lc.Restart(id)
			h.note(i, err, "restart n%d", id)
			if err == nil {
				h.restarted()
			}
		})
	}
	wg.Wait()
}

// flipBit flips one bit, chosen by seed, in the payload of a frame of one
// of fsys's wal segments that another frame follows (so recovery cannot
// take it for a torn tail). It syncs the change and describes where.
func flipBit(fsys *wal.MemFS, seed uint64) (string, error) {
	segs, err := segments(fsys, "/")
	if err != nil {
		return "", err
	}
	rng := rand.New(rand.NewPCG(seed, 0xb17))
	rng.Shuffle(len(segs), func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
	for _, name := range segs {
		if where, err := flipBitIn(fsys, name, rng); !errors.Is(err, errTooFewFrames) {
			return where, err
		}
	}
	return "", errors.New("chaos: no segment with two frames to corrupt")
}

var errTooFewFrames = errors.New("chaos: segment has fewer than two frames")

// flipBitIn flips one bit, chosen by rng, in the payload of a frame of
// segment name that another frame follows.
func flipBitIn(fsys wal.FS, name string, rng *rand.Rand) (string, error) {
	data, err := wal.ReadFile(fsys, name)
	if err != nil {
		return "", err
	}
	frames := frameOffsets(data) // frame starts, then the end
	if len(frames) < 3 {
		return "", errTooFewFrames
	}
	k := rng.IntN(len(frames) - 2) // a frame another frame follows
	start, end := frames[k]+wal.FrameHeaderSize, frames[k+1]
	off := start + rng.Int64N(end-start)
	bit := byte(1) << rng.IntN(8)
	if err := writeByte(fsys, name, off, data[off]^bit); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s offset %d (frame %d of %d) bit %#x", name, off, k, len(frames)-1, bit), nil
}

// segments lists the .wal files under dir, recursively.
func segments(fsys wal.FS, dir string) ([]string, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		p := strings.TrimSuffix(dir, "/") + "/" + n
		if strings.HasSuffix(n, ".wal") {
			out = append(out, p)
			continue
		}
		if sub, err := segments(fsys, p); err == nil {
			out = append(out, sub...)
		}
	}
	return out, nil
}

// frameOffsets returns the file offsets of the whole frames of a segment,
// then the end of the last one (as laid out in wal's doc: a 24-byte
// header, then frames of a 16-byte header whose first 4 bytes are the
// payload length, little-endian, and the payload).
func frameOffsets(data []byte) []int64 {
	off := int64(wal.SegmentHeaderSize)
	var offs []int64
	for off+wal.FrameHeaderSize <= int64(len(data)) {
		n := int64(binary.LittleEndian.Uint32(data[off:]))
		end := off + wal.FrameHeaderSize + n
		if n == 0 || end > int64(len(data)) {
			break
		}
		offs = append(offs, off)
		off = end
	}
	return append(offs, off)
}

func writeByte(fsys wal.FS, name string, off int64, b byte) error {
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte{b}, off); err != nil {
		return errors.Join(err, f.Close())
	}
	return errors.Join(f.Sync(), f.Close())
}
