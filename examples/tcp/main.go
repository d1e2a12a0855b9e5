// Command tcp runs a three-node replog cluster as three OS processes on
// 127.0.0.1, talking over transport/tcp. Each process is one node: it opens
// its Cluster, makes sure the topic exists, appends its own messages, then
// reads the partition until it has seen every node's messages, prints them,
// waits until every node has done the same (each says so in the log) and
// exits.
//
// Start all three at once (this process spawns the nodes as children and
// prefixes their output):
//
//	go run ./examples/tcp -spawn
//
// or start each node yourself, in three terminals:
//
//	go run ./examples/tcp -id 1 -peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 -dir /tmp/replog-1
//	go run ./examples/tcp -id 2 -peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 -dir /tmp/replog-2
//	go run ./examples/tcp -id 3 -peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 -dir /tmp/replog-3
//
// Addresses must be loopback: the connections are neither encrypted nor
// authenticated (transport/tcp supports mutual TLS for real networks).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/replog/replog"
	"github.com/replog/replog/transport/tcp"
)

// clusterID is checked in every connection's handshake.
const clusterID = 0x7265706c6f67

const topic = "tcp-demo"

// nodeOptions configure one node process.
type nodeOptions struct {
	ID       replog.NodeID
	Peers    map[replog.NodeID]string // ID → 127.0.0.1:port, every node
	Dir      string                   // "" in memory
	Count    int                      // messages this node appends
	Session  time.Duration
	Listener net.Listener // tests: pre-opened; nil listens on Peers[ID]
}

func main() {
	var (
		spawn   = flag.Bool("spawn", false, "start all three nodes as child processes on free loopback ports")
		id      = flag.Uint64("id", 0, "this node's ID (1, 2 or 3)")
		peers   = flag.String("peers", "", "every node as id=127.0.0.1:port, comma-separated")
		dir     = flag.String("dir", "", "data directory (empty: in memory)")
		count   = flag.Int("count", 5, "messages each node appends")
		session = flag.Duration("session", 2*time.Second, "session timeout")
		timeout = flag.Duration("timeout", 2*time.Minute, "give up after this long")
	)
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, *timeout)
	defer cancel()
	var err error
	if *spawn {
		err = spawnAll(ctx, os.Stdout, *count, *session)
	} else {
		var ps map[replog.NodeID]string
		ps, err = parsePeers(*peers)
		if err == nil {
			err = runNode(ctx, os.Stdout, nodeOptions{ID: *id, Peers: ps, Dir: *dir, Count: *count, Session: *session})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcp:", err)
		os.Exit(1)
	}
}

// parsePeers reads "1=127.0.0.1:7101,2=..." and refuses non-loopback
// addresses.
func parsePeers(s string) (map[replog.NodeID]string, error) {
	out := map[replog.NodeID]string{}
	for part := range strings.SplitSeq(s, ",") {
		idStr, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("bad peer %q: want id=host:port", part)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("bad peer address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("peer address %q is not loopback: this example runs on 127.0.0.1 only", addr)
		}
		out[id] = addr
	}
	if len(out) < 1 {
		return nil, errors.New("-peers is required (or use -spawn)")
	}
	return out, nil
}

// runNode runs one node: open, ensure the topic, append, read everyone's
// messages, close.
func runNode(ctx context.Context, w io.Writer, o nodeOptions) error {
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "node %d: "+format+"\n", append([]any{o.ID}, args...)...)
	}
	ids := make([]replog.NodeID, 0, len(o.Peers))
	for id := range o.Peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	tr, err := tcp.New(tcp.Config{ID: o.ID, ClusterID: clusterID, ListenAddr: o.Peers[o.ID],
		Listener: o.Listener, Peers: o.Peers})
	if err != nil {
		return err
	}
	c, err := replog.Open(replog.Config{ID: o.ID, Peers: ids, Dir: o.Dir, Transport: tr,
		SessionTimeout: o.Session, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err // Open closed tr
	}
	defer func() {
		if err := c.Close(); err != nil {
			say("close: %v", err)
		}
	}()
	say("listening on %s, peers %v", tr.Addr(), ids)

	if err := ensureTopic(ctx, c); err != nil {
		return err
	}
	say("topic %q is ready", topic)
	start, err := runStart(ctx, c)
	if err != nil {
		return err
	}
	if start > 0 {
		say("the log holds earlier runs' records (kept in -dir): this run starts after offset %d", start-1)
	}
	for i := range o.Count {
		msg := fmt.Sprintf("message %d from node %d", i, o.ID)
		res, err := c.Append(ctx, topic, 0, []replog.Record{{Key: []byte(strconv.FormatUint(o.ID, 10)), Value: []byte(msg)}})
		if err != nil {
			return fmt.Errorf("append: %w", err)
		}
		say("appended %q at offset %d", msg, res.BaseOffset)
	}
	total := o.Count * len(ids)
	perNode := map[string]int{}
	off := start
	for seen := 0; seen < total; {
		res, err := c.Read(ctx, topic, 0, off, replog.MaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for _, r := range res.Records {
			if string(r.Key) != doneKey {
				perNode[string(r.Key)]++
				seen++
			}
			off = r.Offset + 1
		}
	}
	say("read all %d records of every node, in one order on every node: %v per node", total, perNode)

	// Stay until every node has read everything: a node that left early
	// could take the metadata quorum with it while another still waits
	// for records. Each node says it is done in the log itself.
	if _, err := c.Append(ctx, topic, 0, []replog.Record{{Key: []byte(doneKey), Value: []byte(strconv.FormatUint(o.ID, 10))}}); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	done := map[string]bool{}
	for off = start; len(done) < len(ids); {
		res, err := c.Read(ctx, topic, 0, off, replog.MaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for _, r := range res.Records {
			if string(r.Key) == doneKey {
				done[string(r.Value)] = true
			}
			off = r.Offset + 1
		}
	}
	say("every node has read everything; closing")
	return nil
}

// doneKey is the key of the record a node appends once it has read every
// node's messages.
const doneKey = "done"

// runStart returns the offset this run's records start at: after the last
// done record of the earlier runs whose data -dir kept (0 for a fresh
// log). No node of this run appends a done record before every node has
// appended its messages, so the last one before then ends the last run.
func runStart(ctx context.Context, c *replog.Cluster) (int64, error) {
	var start, off int64
	for {
		res, err := c.Read(ctx, topic, 0, off)
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		if len(res.Records) == 0 {
			return start, nil
		}
		for _, r := range res.Records {
			if string(r.Key) == doneKey {
				start = r.Offset + 1
			}
			off = r.Offset + 1
		}
	}
}

// ensureTopic creates the topic, or finds it created by another node. Until
// every node has joined, a replication factor of 3 cannot be placed: wait
// and try again.
func ensureTopic(ctx context.Context, c *replog.Cluster) error {
	for {
		err := c.CreateTopic(ctx, topic, replog.TopicConfig{Partitions: 1, ReplicationFactor: 3})
		switch {
		case err == nil, errors.Is(err, replog.ErrTopicExists):
			return nil
		case !errors.Is(err, replog.ErrNotEnoughReplicas):
			return fmt.Errorf("create topic: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topic: waiting for the other nodes: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// spawnAll starts three nodes as child processes of this program on free
// loopback ports, in memory, and relays their output. It fails if any
// node fails.
func spawnAll(ctx context.Context, w io.Writer, count int, session time.Duration) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var addrs []string
	for range 3 {
		addr, err := freePort()
		if err != nil {
			return err
		}
		addrs = append(addrs, addr)
	}
	peers := fmt.Sprintf("1=%s,2=%s,3=%s", addrs[0], addrs[1], addrs[2])
	fmt.Fprintf(w, "spawning three nodes: %s\n", peers)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		cmd := exec.CommandContext(ctx, exe, "-id", strconv.Itoa(i+1), "-peers", peers,
			"-count", strconv.Itoa(count), "-session", session.String())
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return err
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintf(w, "[%d] %s\n", i+1, sc.Text())
				mu.Unlock()
			}
			if err := cmd.Wait(); err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i+1, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(w, "all three nodes finished")
	return nil
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
