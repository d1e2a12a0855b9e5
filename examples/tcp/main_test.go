package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replog/replog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Three nodes of the example, as goroutines of this test, over real TCP on
// 127.0.0.1.
func TestThreeNodesOverTCP(t *testing.T) {
	runThree(t, nil)
}

// Run twice on the same data directories, the second run reads and counts
// its own records only, not the first run's the log kept.
func TestThreeNodesRunAgainOnTheirData(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	runThree(t, dirs)
	outs := runThree(t, dirs)
	for i, out := range outs {
		if !strings.Contains(out, "map[1:3 2:3 3:3]") || !strings.Contains(out, "this run starts after offset") {
			t.Errorf("node %d, second run:\n%s", i+1, out)
		}
	}
}

// runThree runs the example's three nodes once, with data in dirs if not
// nil, and returns their outputs.
func runThree(t *testing.T, dirs []string) []string {
	t.Helper()
	ls := make([]net.Listener, 3)
	peers := map[replog.NodeID]string{}
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		peers[replog.NodeID(i+1)] = l.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			o := nodeOptions{ID: replog.NodeID(i + 1), Peers: peers, Count: 3, Session: time.Second, Listener: ls[i]}
			if dirs != nil {
				o.Dir = dirs[i]
			}
			errs[i] = runNode(ctx, &outs[i], o)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v\n%s", i+1, err, outs[i].String())
		}
		if want := fmt.Sprintf("node %d: read all 9 records", i+1); !strings.Contains(outs[i].String(), want) {
			t.Errorf("node %d output lacks %q:\n%s", i+1, want, outs[i].String())
		}
	}
	out := make([]string, 3)
	for i := range outs {
		out[i] = outs[i].String()
	}
	return out
}

func TestParsePeers(t *testing.T) {
	got, err := parsePeers("1=127.0.0.1:7101, 2=localhost:7102,3=[::1]:7103")
	if err != nil || len(got) != 3 || got[2] != "localhost:7102" {
		t.Fatalf("parsePeers = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1=10.0.0.1:7101", "x=127.0.0.1:1", "1=127.0.0.1", "0=127.0.0.1:1"} {
		if _, err := parsePeers(bad); err == nil {
			t.Errorf("parsePeers(%q) accepted", bad)
		}
	}
}
