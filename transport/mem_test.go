package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/replog/replog/internal/transporttest"
	"github.com/replog/replog/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects the messages one node receives.
type recorder = transporttest.Recorder

func msg(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// marker is a sequence number far above any test's traffic, sent on a
// healthy link: once it arrives, everything sent before it on that link has
// been delivered or dropped.
const marker = 1 << 62

// cluster starts n endpoints (IDs 1..n) on net, each with a recorder.
func cluster(t *testing.T, net *transport.MemNetwork, n int) ([]*transport.MemEndpoint, []*recorder) {
	t.Helper()
	eps := make([]*transport.MemEndpoint, n+1)
	recs := make([]*recorder, n+1)
	for id := 1; id <= n; id++ {
		eps[id] = net.Endpoint(uint64(id))
		recs[id] = transporttest.NewRecorder()
		if err := eps[id].Start(recs[id].Handle); err != nil {
			t.Fatal(err)
		}
	}
	return eps, recs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSend(t *testing.T, ep *transport.MemEndpoint, to, seq uint64) {
	t.Helper()
	if err := ep.Send(to, msg(seq)); err != nil {
		t.Fatalf("send %d from %d to %d: %v", seq, ep.ID(), to, err)
	}
}

func TestMemOrderedAndComplete(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	eps, recs := cluster(t, net, 3)
	const n = 2000
	var wg sync.WaitGroup
	for from := 1; from <= 3; from++ {
		wg.Go(func() {
			for seq := range uint64(n) {
				for to := 1; to <= 3; to++ {
					mustSend(t, eps[from], uint64(to), seq)
				}
			}
		})
	}
	wg.Wait()
	ctx := ctxT(t)
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i)
	}
	for to := 1; to <= 3; to++ {
		for from := 1; from <= 3; from++ {
			if err := recs[to].WaitFor(ctx, uint64(from), n-1); err != nil {
				t.Fatal(err)
			}
			if got := recs[to].Seqs(uint64(from)); !slices.Equal(got, want) {
				t.Fatalf("%d->%d: got %d messages, not 0..%d in order", from, to, len(got), n-1)
			}
		}
	}
	st := net.Stats()
	if st.Sent != 9*n || st.Delivered != 9*n || st.Dropped() != 0 {
		t.Fatalf("stats %+v, want %d sent and delivered", st, 9*n)
	}
}

// lossyRun sends n messages 1->2 on a link with drop rate p, with optional
// interleaved traffic 1->3, and returns what node 2 received. It runs in a
// synctest bubble so that it can wait for the queues to drain.
func lossyRun(t *testing.T, seed int64, p float64, n uint64, noise bool) (got []uint64, st transport.MemStats) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(seed)
		defer net.Close()
		eps, recs := cluster(t, net, 3)
		net.SetLink(1, 2, transport.LinkFaults{Drop: p})
		net.SetLink(1, 3, transport.LinkFaults{Drop: 0.5})
		for seq := range n {
			if seq%1000 == 0 {
				synctest.Wait() // let the queues drain
			}
			mustSend(t, eps[1], 2, seq)
			if noise {
				mustSend(t, eps[1], 3, seq)
				mustSend(t, eps[1], 3, seq)
			}
		}
		synctest.Wait()
		got, st = recs[2].Seqs(1), net.LinkStats(1, 2)
	})
	return got, st
}

func TestMemDropRateDeterministic(t *testing.T) {
	const n = 10000
	got, st := lossyRun(t, 42, 0.3, n, false)
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatal("delivered messages out of order or duplicated")
	}
	// 3 standard deviations of Binomial(10000, 0.7) is about 137.
	if len(got) < 6850 || len(got) > 7150 {
		t.Fatalf("delivered %d of %d at drop rate 0.3", len(got), n)
	}
	if st.Sent != n || st.Delivered != uint64(len(got)) || st.DroppedFault != n-uint64(len(got)) {
		t.Fatalf("link stats %+v disagree with %d delivered of %d", st, len(got), n)
	}
	again, _ := lossyRun(t, 42, 0.3, n, true)
	if !slices.Equal(got, again) {
		t.Fatal("same seed, other links' traffic: different drops on link 1->2")
	}
	other, _ := lossyRun(t, 43, 0.3, n, false)
	if slices.Equal(got, other) {
		t.Fatal("different seeds gave identical drops")
	}
	all, _ := lossyRun(t, 42, 1, 100, false)
	none, _ := lossyRun(t, 42, 0, 100, false)
	if len(all) != 0 || len(none) != 100 {
		t.Fatalf("drop rate 1 delivered %d, rate 0 delivered %d of 100", len(all), len(none))
	}
}

func TestMemPartitionAndHeal(t *testing.T) {
	net := transport.NewMemNetwork(7)
	defer net.Close()
	eps, recs := cluster(t, net, 3)
	ctx := ctxT(t)

	net.Partition([]uint64{1, 2}, []uint64{3})
	for _, p := range [][2]uint64{{1, 3}, {3, 1}, {2, 3}, {3, 2}} {
		mustSend(t, eps[p[0]], p[1], 1)
	}
	mustSend(t, eps[1], 2, 1)
	mustSend(t, eps[3], 3, 1) // a node always reaches itself
	if err := recs[2].WaitFor(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := recs[3].WaitFor(ctx, 3, 1); err != nil {
		t.Fatal(err)
	}
	if st := net.Stats(); st.DroppedCut != 4 || st.Delivered != 2 {
		t.Fatalf("stats after partition: %+v", st)
	}

	// Partition({1}): 1 alone, 2 and 3 together.
	net.Partition([]uint64{1})
	mustSend(t, eps[2], 3, 2)
	mustSend(t, eps[2], 1, 2)
	if err := recs[3].WaitFor(ctx, 2, 2); err != nil {
		t.Fatal(err)
	}

	net.Isolate(2)
	mustSend(t, eps[3], 2, 3)
	mustSend(t, eps[2], 3, 3)
	if st := net.Stats(); st.DroppedCut != 7 {
		t.Fatalf("stats after isolate: %+v", st)
	}

	net.Heal()
	for _, p := range [][2]uint64{{1, 3}, {3, 1}, {2, 3}, {3, 2}, {2, 1}} {
		mustSend(t, eps[p[0]], p[1], marker)
		if err := recs[p[1]].WaitFor(ctx, p[0], marker); err != nil {
			t.Fatal(err)
		}
	}
	if got := recs[1].Seqs(3); !slices.Equal(got, []uint64{marker}) {
		t.Fatalf("1 got %v from 3, want only the marker", got)
	}
}

func TestMemDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		a, b := net.Endpoint(1), net.Endpoint(2)
		type arrival struct {
			seq uint64
			at  time.Duration
		}
		var mu sync.Mutex
		var got []arrival
		start := time.Now()
		if err := a.Start(func(uint64, []byte) {}); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(func(_ uint64, m []byte) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, arrival{binary.BigEndian.Uint64(m), time.Since(start)})
		}); err != nil {
			t.Fatal(err)
		}
		net.SetLink(1, 2, transport.LinkFaults{Delay: 100 * time.Millisecond})
		mustSend(t, a, 2, 1)
		time.Sleep(30 * time.Millisecond) // fake clock: moves time, not a sync
		mustSend(t, a, 2, 2)
		net.SetLink(1, 2, transport.LinkFaults{}) // 3 may not overtake 1 and 2
		mustSend(t, a, 2, 3)
		synctest.Wait()
		mu.Lock()
		if len(got) != 0 {
			t.Fatalf("delivered before the delay: %v", got)
		}
		mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		want := []arrival{{1, 100 * time.Millisecond}, {2, 130 * time.Millisecond}, {3, 130 * time.Millisecond}}
		if !slices.Equal(got, want) {
			t.Fatalf("arrivals %v, want %v", got, want)
		}

		// A message in flight when the link is cut is lost.
		net.SetLink(1, 2, transport.LinkFaults{Delay: time.Second})
		mustSend(t, a, 2, 4)
		net.Isolate(2)
		mu.Unlock()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		if st := net.LinkStats(1, 2); st.DroppedCut != 1 || st.Delivered != 3 || len(got) != 3 {
			t.Fatalf("after cutting an in-flight message: %+v, %d arrivals", st, len(got))
		}
	})
}

func TestMemQueueBoundedSendNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		a, b := net.Endpoint(1), net.Endpoint(2)
		release := make(chan struct{})
		var delivered int
		if err := a.Start(func(uint64, []byte) {}); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(func(uint64, []byte) {
			<-release
			delivered++
		}); err != nil {
			t.Fatal(err)
		}
		full := 0
		for seq := range uint64(transport.MemQueueLen + 100) {
			err := a.Send(2, msg(seq))
			if errors.Is(err, transport.ErrQueueFull) {
				full++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if full != 100 {
			t.Fatalf("%d sends refused, want 100", full)
		}
		// Other links are not held up by the stuck receiver.
		if err := a.Send(1, msg(0)); err != nil {
			t.Fatal(err)
		}
		close(release)
		synctest.Wait()
		st := net.LinkStats(1, 2)
		if delivered != transport.MemQueueLen || st.Delivered != transport.MemQueueLen || st.DroppedFull != 100 {
			t.Fatalf("delivered %d, stats %+v", delivered, st)
		}
	})
}

func TestMemCloseWaitsForHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := transport.NewMemNetwork(1)
		defer net.Close()
		a, b := net.Endpoint(1), net.Endpoint(2)
		entered, release := make(chan struct{}), make(chan struct{})
		if err := a.Start(func(uint64, []byte) {}); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(func(uint64, []byte) {
			close(entered)
			<-release
		}); err != nil {
			t.Fatal(err)
		}
		mustSend(t, a, 2, 1)
		<-entered
		closed := make(chan error)
		go func() { closed <- b.Close() }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a Handler call was running")
		default:
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		// Later messages to the closed node are dropped, not delivered.
		mustSend(t, a, 2, 2)
		synctest.Wait()
		if st := net.LinkStats(1, 2); st.Delivered != 1 || st.DroppedUnreachable != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestMemRestartedEndpoint(t *testing.T) {
	net := transport.NewMemNetwork(1)
	defer net.Close()
	eps, _ := cluster(t, net, 2)
	if err := eps[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := eps[2].Close(); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := eps[2].Send(1, msg(1)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	b := net.Endpoint(2)
	if b == eps[2] {
		t.Fatal("Endpoint returned the closed endpoint")
	}
	if net.Endpoint(2) != b {
		t.Fatal("Endpoint returned a second open endpoint for one node")
	}
	rec := transporttest.NewRecorder()
	if err := b.Send(1, msg(1)); !errors.Is(err, transport.ErrNotStarted) {
		t.Fatalf("Send before Start: %v", err)
	}
	if err := b.Start(nil); !errors.Is(err, transport.ErrNilHandler) {
		t.Fatalf("Start(nil): %v", err)
	}
	if err := b.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(rec.Handle); !errors.Is(err, transport.ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	mustSend(t, eps[1], 2, marker)
	if err := rec.WaitFor(ctxT(t), 1, marker); err != nil {
		t.Fatal(err)
	}
}

func TestMemNetworkClose(t *testing.T) {
	net := transport.NewMemNetwork(1)
	eps, _ := cluster(t, net, 2)
	mustSend(t, eps[1], 2, 1)
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	if err := net.Close(); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := eps[1].Send(2, msg(2)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after network Close: %v", err)
	}
	if err := net.Endpoint(3).Start(func(uint64, []byte) {}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Start on a closed network: %v", err)
	}
}

// TestMemFaultsUnderTraffic changes faults while three nodes talk: every
// link still delivers in order, without duplicates, and the counters add up.
func TestMemFaultsUnderTraffic(t *testing.T) {
	net := transport.NewMemNetwork(99)
	eps, recs := cluster(t, net, 3)
	const n = 3000
	stop := make(chan struct{})
	var faults sync.WaitGroup
	faults.Go(func() {
		for i := range 1_000_000 { // bounded; the senders finish long before
			select {
			case <-stop:
				return
			default:
			}
			switch i % 5 {
			case 0:
				net.Partition([]uint64{uint64(i%3 + 1)})
			case 1:
				net.SetLink(1, 2, transport.LinkFaults{Drop: 0.5})
			case 2:
				net.Isolate(3)
			case 3:
				net.SetLink(2, 1, transport.LinkFaults{Drop: 0.2, Delay: time.Microsecond})
			case 4:
				net.Heal()
			}
		}
	})
	var senders sync.WaitGroup
	for from := 1; from <= 3; from++ {
		senders.Go(func() {
			for seq := range uint64(n) {
				for to := 1; to <= 3; to++ {
					if err := eps[from].Send(uint64(to), msg(seq)); err != nil && !errors.Is(err, transport.ErrQueueFull) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	senders.Wait()
	close(stop)
	faults.Wait()
	net.Heal()
	ctx := ctxT(t)
	for from := 1; from <= 3; from++ {
		for to := 1; to <= 3; to++ {
			mustSend(t, eps[from], uint64(to), marker)
			if err := recs[to].WaitFor(ctx, uint64(from), marker); err != nil {
				t.Fatal(err)
			}
			got := recs[to].Seqs(uint64(from))
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("%d->%d: %d after %d", from, to, got[i], got[i-1])
				}
			}
		}
	}
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	st := net.Stats()
	if st.Sent != 9*n+9 || st.Sent != st.Delivered+st.Dropped() {
		t.Fatalf("counters do not add up: %+v", st)
	}
}
