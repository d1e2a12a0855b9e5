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
			errs[i] = runNode(ctx, &outs[i], nodeOptions{ID: replog.NodeID(i + 1), Peers: peers,
				Count: 3, Session: time.Second, Listener: ls[i]})
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
