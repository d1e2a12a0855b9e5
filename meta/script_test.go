package meta

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/replog/replog/internal/scripttest"
)

// Scenario scripts in testdata/controller/*.txt, in the datadriven style of
// etcd raft: each case is a command line, "----", the expected output, and
// a blank line. Run with -rewrite to regenerate the expected outputs, then
// review the diff.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of scenario scripts")

type scriptCase struct {
	cmd  string
	args []string
}

func TestControllerScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/controller/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			s := newScenario(t)
			scripttest.Run(t, file, *rewrite, func(line string) string {
				f := strings.Fields(line)
				return s.script(t, scriptCase{cmd: f[0], args: f[1:]})
			})
		})
	}
}

// args parses key=value arguments; bare words go under "".
func scriptArgs(t *testing.T, in []string) map[string]string {
	m := map[string]string{}
	for _, a := range in {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			m[""] = strings.TrimSpace(m[""] + " " + a)
			continue
		}
		m[k] = v
	}
	return m
}

func ids(t *testing.T, s string) []uint64 {
	var out []uint64
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		id, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("bad id %q", f)
		}
		out = append(out, id)
	}
	return out
}

func num(t *testing.T, m map[string]string, k string, def int64) int64 {
	v, ok := m[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("bad %s=%q", k, v)
	}
	return n
}

// script runs one scripted command against the scenario and describes
// what happened.
func (s *scenario) script(t *testing.T, c scriptCase) string {
	a := scriptArgs(t, c.args)
	before := len(s.evs)
	var out []string
	res := func(r result) {
		if r.err != nil {
			out = append(out, "error: "+r.err.Error())
		}
	}
	switch c.cmd {
	case "register":
		for _, id := range ids(t, a[""]) {
			res(s.do(&command{Op: opRegister, Node: id, Nonce: uint64(num(t, a, "nonce", int64(id)))}))
		}
	case "create":
		res(s.do(&command{Op: opCreateTopic, Topic: a[""], Config: &TopicConfig{
			Partitions: int32(num(t, a, "partitions", 1)), ReplicationFactor: int(num(t, a, "rf", 0))}}))
	case "tick":
		alive := ids(t, a["alive"])
		for range num(t, a, "", 1) {
			s.now++
			for _, id := range alive {
				s.c.heartbeat(id, s.inc(id), s.now)
			}
			for _, cmd := range s.c.decide(s.s, s.now, true) {
				out = append(out, fmt.Sprintf("t%d: propose %s", s.now, describeCommand(cmd)))
				if r := s.do(cmd); r.err != nil {
					out = append(out, "  refused: "+r.err.Error())
				}
			}
		}
	case "alter-isr", "elect":
		topic, pstr, _ := strings.Cut(a[""], "/")
		pn, _ := strconv.Atoi(pstr)
		p, ok := s.s.Partition(topic, int32(pn))
		if !ok {
			p = &Partition{}
		}
		cmd := &command{Topic: topic, Partition: int32(pn),
			LeaderEpoch:    int32(num(t, a, "lepoch", int64(p.LeaderEpoch))),
			PartitionEpoch: int32(num(t, a, "pepoch", int64(p.PartitionEpoch)))}
		if c.cmd == "alter-isr" {
			cmd.Op, cmd.From, cmd.ISR = opAlterISR, uint64(num(t, a, "from", int64(p.Leader))), ids(t, a["isr"])
		} else {
			cmd.Op, cmd.Leader = opElectLeader, uint64(num(t, a, "leader", 0))
		}
		res(s.do(cmd))
	case "drain", "unhealthy", "healthy":
		for _, id := range ids(t, a[""]) {
			cmd := &command{Op: opDrain, Node: id, Incarnation: s.inc(id), Flag: true}
			if c.cmd != "drain" {
				cmd.Op, cmd.Flag = opSetUnhealthy, c.cmd == "unhealthy"
			}
			res(s.do(cmd))
		}
	case "state":
		out = append(out, describeState(s.s)...)
	default:
		t.Fatalf("unknown command %q", c.cmd)
	}
	for _, e := range s.evs[before:] {
		out = append(out, describeEvent(e))
	}
	if len(out) == 0 {
		return "ok"
	}
	return strings.Join(out, "\n")
}

func describeCommand(c *command) string {
	switch c.Op {
	case opFence:
		return fmt.Sprintf("fence node=%d inc=%d", c.Node, c.Incarnation)
	case opUnfence:
		return fmt.Sprintf("unfence node=%d inc=%d", c.Node, c.Incarnation)
	case opElectLeader:
		return fmt.Sprintf("elect %s/%d leader=%d pepoch=%d", c.Topic, c.Partition, c.Leader, c.PartitionEpoch)
	}
	return fmt.Sprintf("op %d", c.Op)
}

func describePartition(topic string, p *Partition) string {
	return fmt.Sprintf("%s/%d leader=%d lepoch=%d pepoch=%d replicas=%v isr=%v",
		topic, p.Partition, p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.Replicas, p.ISR)
}

func describeNode(n NodeInfo) string {
	s := fmt.Sprintf("node %d inc=%d", n.ID, n.Incarnation)
	for _, f := range []struct {
		on   bool
		name string
	}{{n.Fenced, "fenced"}, {n.Draining, "draining"}, {n.Unhealthy, "unhealthy"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

func describeEvent(e Event) string {
	switch e.Type {
	case EventPartitionChanged:
		p, _ := e.State.Partition(e.Topic, e.Partition)
		return "  event " + e.Type.String() + ": " + describePartition(e.Topic, p)
	case EventTopicCreated, EventTopicDeleted:
		return "  event " + e.Type.String() + ": " + e.Topic
	default:
		n, _ := e.State.Node(e.Node)
		return "  event " + e.Type.String() + ": " + describeNode(n)
	}
}

func describeState(s *State) []string {
	var out []string
	for _, n := range s.Nodes() {
		out = append(out, describeNode(n))
	}
	for _, t := range s.Topics() {
		for i := range t.Partitions {
			out = append(out, describePartition(t.Name, &t.Partitions[i]))
		}
	}
	return slices.Clip(out)
}
