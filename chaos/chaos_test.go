package chaos

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replog/replog"
	"go.uber.org/goleak"
)

var (
	seedFlag     = flag.Int64("seed", 0, "run TestChaos for this seed only (replays its schedule)")
	durationFlag = flag.Duration("chaos.duration", 5*time.Second, "workload duration of one run (one history)")
	soakFlag     = flag.Duration("soak", 0, "run TestSoak: random seeds for this long")
	bugsFlag     = flag.Bool("chaos.known-bugs", false, "also inject the faults that corruptionBug keeps out of the random runs")
)

// corruptionBug, when not empty, is why the random runs leave the Corrupt
// fault out unless -chaos.known-bugs is given. Empty since a replica whose
// read finds its log damaged fails and is rebuilt from its peers at its
// next start (the bug was found by TestSoak at commit 4a9d0ca, seed
// 795355981064: such a replica stayed in the ISR and, elected, could
// serve nothing).
const corruptionBug = ""

// randomFaults is every kind the random runs inject: all of them, but
// Corrupt only with -chaos.known-bugs while corruptionBug stands.
func randomFaults() []FaultKind {
	if corruptionBug != "" && !*bugsFlag {
		return without(allFaults, Corrupt)
	}
	return allFaults
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// allFaults is every kind the random suite injects.
var allFaults = []FaultKind{Kill, Crash, CrashAll, Isolate, IsolateLeader, KillLeader, Split, Links, Stall, Corrupt}

// configFor derives a run's whole configuration from its seed, so that a
// seed alone replays a run:
//
//	seed mod 4 = 0: SyncAlways, 3 nodes, every fault (crashes of every node
//	                included: nothing acknowledged may be lost); with a
//	                journal per node (Config.Journal) when seed/4 is odd,
//	                a sync group per node (Config.SyncGroup) when seed/4
//	                mod 4 is 2
//	seed mod 4 = 1: SyncNever, 3 nodes, every fault but CrashAll: one node
//	                at a time loses its unsynced data; nothing acknowledged
//	                may be lost, the other replicas hold it
//	seed mod 4 = 2: SyncNever, 3 nodes, CrashAll among kills and isolations:
//	                losses are expected and reported as such
//	seed mod 4 = 3: SyncAlways, 5 nodes (replication factor 3), every fault
func configFor(seed int64, d time.Duration) runConfig {
	faults := randomFaults()
	cfg := runConfig{Seed: seed, Nodes: 3, Clients: 4, Duration: d, Durability: replog.SyncAlways, Kinds: faults}
	switch uint64(seed) % 4 {
	case 0:
		cfg.Journal = (uint64(seed)/4)%2 == 1
		cfg.SyncGroup = (uint64(seed)/4)%4 == 2
	case 1:
		cfg.Durability = replog.SyncNever
		cfg.Kinds = without(faults, CrashAll)
	case 2:
		cfg.Durability = replog.SyncNever
		cfg.Kinds = []FaultKind{CrashAll, Kill, IsolateLeader, Crash}
		cfg.ExpectLoss = true
	case 3:
		cfg.Nodes = 5
	}
	if (uint64(seed)/1024)%3 == 2 {
		// About 5 appends in flight per node, past the 4 calls a node
		// keeps in flight per partition: appends join into batches under
		// the nemesis. (No seed of the short suite: it stays quick.)
		cfg.Clients = 24
	}
	return cfg
}

func without(kinds []FaultKind, drop FaultKind) []FaultKind {
	var out []FaultKind
	for _, k := range kinds {
		if k != drop {
			out = append(out, k)
		}
	}
	return out
}

// shortSeeds are the runs of the short suite: each configuration, and
// among them every fault kind within a run of 5s (see configFor).
var shortSeeds = []int64{116, 104, 149, 102, 147}

// TestChaos is the short suite: a few fixed seeds, one per configuration,
// each a run of -chaos.duration. With -seed=N it runs seed N only: a
// failing seed printed by TestChaos or TestSoak replays the same schedule
// (the timing of the real cluster still varies from run to run):
//
//	go test ./chaos -run 'TestChaos$' -seed=N -v
func TestChaos(t *testing.T) {
	seeds := shortSeeds
	if *seedFlag != 0 {
		seeds = []int64{*seedFlag}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cfg := configFor(seed, *durationFlag)
			o := run(t, cfg)
			t.Logf("%v\n%s\nfaults %v, %d ops in %v", o.cfg, o.result, o.faults, len(o.hist), o.elapsed.Round(time.Millisecond))
			for _, g := range o.gaps {
				t.Logf("known %s: %s", knownCorruptionGap, g)
			}
			if o.failed() {
				t.Errorf("FAILED: %s", o.report())
			}
		})
	}
}

// TestSoak runs random seeds for -soak (skipped without it), bounded by
// the test binary's -timeout, and prints what it checked:
//
//	go test ./chaos -run TestSoak -soak=10m -timeout=0 -v
func TestSoak(t *testing.T) {
	if *soakFlag <= 0 {
		t.Skip("soak disabled; enable with -soak=10m (and -timeout=0)")
	}
	end := time.Now().Add(*soakFlag)
	if dl, ok := t.Deadline(); ok && dl.Add(-2*time.Minute).Before(end) {
		end = dl.Add(-2 * time.Minute)
		t.Logf("soak shortened to the test deadline: until %v", end.Format(time.TimeOnly))
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 0))
	var s soakStats
	s.faults = map[FaultKind]int{}
	for time.Now().Before(end) {
		seed := rng.Int64N(1 << 40)
		cfg := configFor(seed, *durationFlag)
		o := run(t, cfg)
		s.add(o)
		if o.failed() {
			t.Errorf("seed %d FAILED: %s", seed, o.report())
		}
		t.Logf("seed %d: %s", seed, o.result)
	}
	t.Logf("soak: %s in %v", s, time.Since(start).Round(time.Second))
}

type soakStats struct {
	histories, ops, appendsOK, reads, records int
	expectedLosses, gaps                      int
	failed                                    []int64
	faults                                    map[FaultKind]int
}

func (s *soakStats) add(o *outcome) {
	s.histories++
	s.ops += len(o.hist)
	if o.result != nil {
		s.appendsOK += o.result.Stats.AppendsOK
		s.reads += o.result.Stats.ReadsOK
		s.records += o.result.Stats.FinalLen
		s.expectedLosses += len(o.result.Expected)
	}
	s.gaps += len(o.gaps)
	for k, n := range o.faults {
		s.faults[k] += n
	}
	if o.failed() {
		s.failed = append(s.failed, o.cfg.Seed)
	}
}

func (s soakStats) String() string {
	kinds := make([]FaultKind, 0, len(s.faults))
	total := 0
	for k, n := range s.faults {
		kinds = append(kinds, k)
		total += n
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	var fs []string
	for _, k := range kinds {
		fs = append(fs, fmt.Sprintf("%v %d", k, s.faults[k]))
	}
	return fmt.Sprintf("%d histories, %d operations (%d acknowledged appends, %d reads, %d records in final logs), %d faults injected (%s), %d expected losses (SyncNever + crash of every node), %d replicas left unrecovered after corruption (known gap), %d failed seeds %v",
		s.histories, s.ops, s.appendsOK, s.reads, s.records, total, strings.Join(fs, ", "), s.expectedLosses, s.gaps, len(s.failed), s.failed)
}

// TestNoFaults is the baseline: the same workload and checks without a
// fault. It must pass before anything else can.
func TestNoFaults(t *testing.T) {
	cfg := runConfig{Seed: 7, Nodes: 3, Clients: 4, Duration: 2 * time.Second, Durability: replog.SyncAlways}
	o := run(t, cfg)
	t.Logf("%s", o.result)
	if o.failed() {
		t.Errorf("FAILED: %s", o.report())
	}
}
