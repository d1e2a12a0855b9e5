package replication

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replog/replog/meta"
)

// The sweep removes, once per start, the replica directories under
// Config.Dir that no replica of this node will ever open again: those of
// topics deleted while this node was not watching (down, or crashed after
// its metadata applied the deletion and before its replicas were removed)
// and those of partitions not assigned to this node. With a journal it
// forgets each one's journal id first, so that the journal trims past
// their records.
//
// It decides from a linearizable view only: it waits for a meta Barrier
// (retried while no quorum answers, until Close), then reads the State.
// Even so it removes a directory only on facts that no later State can
// undo: topic IDs are the raft index that created the topic and are never
// reused, so a topic ID at or below the State's index that the State does
// not hold was deleted for good. A directory of an ID above the index
// (created after the State: never the case after a Barrier, but cheap to
// refuse) is left alone.
//
// Quarantined directories (<replica dir>.corrupt-<ns>) are evidence of
// corruption kept for inspection: the sweep keeps those of live replicas
// (they hold no journal record and no name a replica could take: they
// block nothing) and removes those of replicas removed for good (topic
// deleted, partition not assigned here), as deleting a topic deletes its
// data.

// sweepBarrierTimeout bounds one attempt at a Barrier before the sweep;
// attempts repeat until one succeeds or the Manager closes.
const sweepBarrierTimeout = 10 * time.Second

// quarantineInfix separates a quarantined directory's replica directory
// name from the time it was moved aside (see Manager.quarantine).
const quarantineInfix = ".corrupt-"

// sweepLoop waits until the metadata is linearizable, then sweeps. Owned
// by the Manager; exits on Close, or when the sweep is done.
func (m *Manager) sweepLoop() {
	defer m.wg.Done()
	if !m.sweepCandidates() {
		return
	}
	if m.retryMeta(sweepBarrierTimeout, m.cfg.Logger.Info,
		"replication: waiting for a metadata quorum before removing replicas of deleted topics", m.cfg.Meta.Barrier) {
		m.sweep()
	}
}

// sweepCandidates reports whether Config.Dir holds a replica directory
// this Manager has not opened, or a quarantined one: without any, a
// sweep has nothing to decide and needs no Barrier.
func (m *Manager) sweepCandidates() bool {
	names, err := m.cfg.FS.ReadDir(m.cfg.Dir)
	if err != nil {
		return false // no Dir yet: nothing to sweep
	}
	for _, name := range names {
		d, ok := parseReplicaDir(name)
		if ok && (d.quarantined || m.replica(d.key) == nil) {
			return true
		}
	}
	return false
}

// replicaDirName is a directory name under Config.Dir, parsed.
type replicaDirName struct {
	topic       string
	key         pkey
	base        string // the replica directory's name (the quarantine's, less its suffix)
	quarantined bool
}

// parseReplicaDir parses "<topic>-<topic ID>-<partition>", with an
// optional ".corrupt-<ns>" suffix. ok is false for any other name (the
// journal's directory, files of the host's): the sweep leaves those.
func parseReplicaDir(name string) (d replicaDirName, ok bool) {
	d.base = name
	if i := strings.LastIndex(name, quarantineInfix); i >= 0 && allDigits(name[i+len(quarantineInfix):]) {
		d.base, d.quarantined = name[:i], true
	}
	j := strings.LastIndexByte(d.base, '-')
	if j <= 0 || !allDigits(d.base[j+1:]) {
		return d, false
	}
	i := strings.LastIndexByte(d.base[:j], '-')
	if i <= 0 || !allDigits(d.base[i+1:j]) {
		return d, false
	}
	id, err1 := strconv.ParseUint(d.base[i+1:j], 10, 64)
	p, err2 := strconv.ParseInt(d.base[j+1:], 10, 32)
	d.topic = d.base[:i]
	if err1 != nil || err2 != nil || meta.ValidTopicName(d.topic) != nil {
		return d, false
	}
	d.key = pkey{id, int32(p)}
	return d, replicaDir("", d.topic, id, d.key.partition) == d.base
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// orphanReason says why no replica of this node will ever use the
// directory d as of st, or "" if one may.
func (m *Manager) orphanReason(st *meta.State, d replicaDirName) string {
	if d.key.topicID > st.Index() {
		return "" // created after st: not decidable from it
	}
	t, ok := st.Topic(d.topic)
	switch {
	case !ok || t.ID != d.key.topicID:
		return "topic deleted"
	case d.key.partition < 0 || int(d.key.partition) >= len(t.Partitions):
		return "no such partition"
	case !slices.Contains(t.Partitions[d.key.partition].Replicas, m.cfg.ID):
		return "partition not assigned to this node"
	}
	return ""
}

// sweep removes the directories under Config.Dir that no replica of this
// node will use again (see orphanReason). Call it only once the State is
// linearizable. Quarantines of live replicas are kept, and logged.
func (m *Manager) sweep() {
	names, err := m.cfg.FS.ReadDir(m.cfg.Dir)
	if err != nil {
		m.cfg.Logger.Warn("replication: cannot list the data directory to remove replicas of deleted topics", "dir", m.cfg.Dir, "err", err)
		return
	}
	st := m.cfg.Meta.State() // read after the listing: at least as new as every directory listed
	var kept []string
	for _, name := range names {
		if m.ctx.Err() != nil {
			return
		}
		d, ok := parseReplicaDir(name)
		if !ok {
			continue
		}
		reason := m.orphanReason(st, d)
		if reason == "" {
			if d.quarantined {
				kept = append(kept, name)
			}
			continue
		}
		m.removeOrphan(name, d, reason)
	}
	if len(kept) > 0 {
		m.cfg.Logger.Warn("replication: quarantined replica directories kept for inspection; remove them by hand when done",
			"dir", m.cfg.Dir, "quarantined", kept)
	}
}

// removeTopicDirs removes the directories under Config.Dir of a deleted
// topic that no open replica had: a replica whose open failed left its
// directory (and a quarantine, its own) behind, which the next start's
// sweep would remove otherwise.
func (m *Manager) removeTopicDirs(topicID uint64) {
	names, err := m.cfg.FS.ReadDir(m.cfg.Dir)
	if err != nil {
		return
	}
	for _, name := range names {
		if d, ok := parseReplicaDir(name); ok && d.key.topicID == topicID {
			m.removeOrphan(name, d, "topic deleted")
		}
	}
}

// removeOrphan removes one directory the sweep found orphaned, unless a
// replica opened it meanwhile. dirMu keeps replicas from being opened or
// removed while it works.
func (m *Manager) removeOrphan(name string, d replicaDirName, reason string) {
	m.dirMu.Lock()
	defer m.dirMu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	dir := filepath.Join(m.cfg.Dir, name)
	if _, err := m.cfg.FS.ReadDir(dir); errors.Is(err, fs.ErrNotExist) {
		return // removed meanwhile, with its replica
	}
	var err error
	if d.quarantined {
		err = m.removeDir(dir)
	} else {
		if m.replica(d.key) != nil {
			return // open: the watch loop removes it when its metadata catches up
		}
		err = m.removeReplicaDir(dir)
	}
	if err != nil {
		m.cfg.Logger.Warn("replication: cannot remove an orphaned replica directory; the next start tries again",
			"dir", dir, "reason", reason, "err", err)
		return
	}
	m.cfg.Logger.Info("replication: removed an orphaned replica directory", "dir", dir, "topic", d.topic,
		"topic_id", d.key.topicID, "partition", d.key.partition, "quarantined", d.quarantined, "reason", reason)
}

// removeReplicaDir removes a replica's directory, durably, its log being
// closed for good: with a journal it first forgets the replica's journal
// id (so that its records are never replayed into a new log of that name
// and no longer keep the journal from trimming), then removes the files.
// Forgetting first leaves, after a crash between the two, a directory the
// next start's sweep removes; the other order could leave the journal
// holding records of a directory gone for good, never trimmed.
func (m *Manager) removeReplicaDir(dir string) error {
	if err := m.forgetJournal(dir); err != nil {
		return fmt.Errorf("forgetting its journal records: %w", err)
	}
	return m.removeDir(dir)
}

// removeDir removes the files of dir, then dir, durably. A missing dir is
// not an error.
func (m *Manager) removeDir(dir string) error {
	fsys := m.cfg.FS
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return err
	}
	if err := fsys.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fsys.SyncDir(filepath.Dir(dir))
}

// removeQuarantines removes the quarantined directories of the replica
// directory dir (its replica removed for good), logging what it removes;
// a failure is logged and left to the next start's sweep.
func (m *Manager) removeQuarantines(dir string) {
	names, err := m.cfg.FS.ReadDir(filepath.Dir(dir))
	if err != nil {
		return
	}
	base := filepath.Base(dir)
	for _, name := range names {
		if d, ok := parseReplicaDir(name); !ok || !d.quarantined || d.base != base {
			continue
		}
		q := filepath.Join(filepath.Dir(dir), name)
		if err := m.removeDir(q); err != nil {
			m.cfg.Logger.Warn("replication: cannot remove a quarantined directory of a removed replica; the next start tries again",
				"dir", q, "err", err)
			continue
		}
		m.cfg.Logger.Info("replication: removed the quarantined directory of a removed replica", "dir", q)
	}
}
