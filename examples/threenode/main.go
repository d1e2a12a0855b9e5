// Command threenode runs a three-node replog cluster inside one process and
// walks through what it does: it creates a topic, appends through every
// node, reads back through every node, stops the partition's leader the way
// a crash would, shows another node taking over, restarts the old leader
// and shows it catching up. Everything is in memory:
//
//	go run ./examples/threenode
//
// It prints what happens in plain words and exits 0, or 1 with the error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/replog/replog"
)

func main() {
	session := flag.Duration("session", time.Second, "session timeout: how long a silent node has before the cluster declares it dead")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *session); err != nil {
		fmt.Fprintln(os.Stderr, "threenode:", err)
		os.Exit(1)
	}
}

const topic = "greetings"

// run is the whole walk-through, writing its story to w.
func run(ctx context.Context, w io.Writer, session time.Duration) error {
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	lc, err := replog.NewLocalCluster(3, replog.WithConfig(func(c *replog.Config) {
		c.SessionTimeout = session
	}))
	if err != nil {
		return err
	}
	defer lc.Close()
	say("Started nodes 1, 2 and 3 in this process, talking over an in-memory network.")

	if err := lc.Node(1).CreateTopic(ctx, topic, replog.TopicConfig{Partitions: 1, ReplicationFactor: 3}); err != nil {
		return err
	}
	p, err := partition(ctx, lc.Node(1))
	if err != nil {
		return err
	}
	leader := p.Leader
	say("Created topic %q: one partition, replicas on nodes %v, led by node %d.", topic, p.Replicas, leader)

	// Append through every node: followers forward to the leader.
	var want []string
	for _, c := range lc.Nodes() {
		msg := fmt.Sprintf("hello from node %d", c.ID())
		res, err := c.Append(ctx, topic, 0, []replog.Record{{Value: []byte(msg)}})
		if err != nil {
			return fmt.Errorf("append through node %d: %w", c.ID(), err)
		}
		want = append(want, msg)
		say("Node %d appended %q at offset %d%s.", c.ID(), msg, res.BaseOffset, via(c.ID(), leader))
	}

	// Read back through every node: each serves its own replica.
	for _, c := range lc.Nodes() {
		got, err := readAll(ctx, c, len(want))
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("node %d reads %q, want %q", c.ID(), got, want)
		}
		say("Node %d reads back all %d records from its own replica: %q.", c.ID(), len(got), got)
	}

	// Crash the leader: no handover.
	say("Stopping node %d, the leader, without warning (as a crash would)...", leader)
	if err := lc.Stop(leader); err != nil {
		return err
	}
	stopped := time.Now()
	survivor := lc.Nodes()[0]
	msg := "written while the old leader is down"
	if _, err := survivor.Append(ctx, topic, 0, []replog.Record{{Value: []byte(msg)}}); err != nil {
		return fmt.Errorf("append after the leader stopped: %w", err)
	}
	want = append(want, msg)
	p, err = partition(ctx, survivor)
	if err != nil {
		return err
	}
	say("Node %d took over as leader (epoch %d); the first append after the crash waited %v "+
		"(the session timeout is %v). The in-sync replicas are now %v.",
		p.Leader, p.LeaderEpoch, time.Since(stopped).Round(time.Millisecond), session, p.ISR)
	for _, c := range lc.Nodes() {
		got, err := readAll(ctx, c, len(want))
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("node %d reads %q after the failover, want %q", c.ID(), got, want)
		}
	}
	say("Nothing acknowledged was lost: both remaining nodes hold all %d records.", len(want))

	// Bring the old leader back.
	say("Restarting node %d...", leader)
	if err := lc.Restart(leader); err != nil {
		return err
	}
	got, err := readAll(ctx, lc.Node(leader), len(want))
	if err != nil {
		return err
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("restarted node %d reads %q, want %q", leader, got, want)
	}
	say("Node %d caught up: its replica holds the same %d records, including %q.", leader, len(got), msg)
	say("Done.")
	return nil
}

// partition returns the topic's one partition as c sees it.
func partition(ctx context.Context, c *replog.Cluster) (replog.PartitionInfo, error) {
	ti, err := c.Topic(ctx, topic)
	if err != nil {
		return replog.PartitionInfo{}, err
	}
	return ti.Partitions[0], nil
}

// readAll reads the first n records of the partition through c, waiting
// until c's replica has them committed.
func readAll(ctx context.Context, c *replog.Cluster, n int) ([]string, error) {
	var out []string
	for len(out) < n {
		res, err := c.Read(ctx, topic, 0, int64(len(out)), replog.MaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read through node %d: %w", c.ID(), err)
		}
		for _, r := range res.Records {
			out = append(out, string(r.Value))
		}
	}
	return out[:n], nil
}

// via says how an append through node id reached the leader.
func via(id, leader replog.NodeID) string {
	if id == leader {
		return " (it is the leader)"
	}
	return fmt.Sprintf(" (forwarded to leader %d)", leader)
}
