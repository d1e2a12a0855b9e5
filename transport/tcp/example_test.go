package tcp_test

import (
	"fmt"
	"net"

	"github.com/replog/replog/transport/tcp"
)

func Example() {
	// Two nodes on loopback. Listeners first, so that each knows the
	// other's address.
	ln1, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	peers := map[uint64]string{1: ln1.Addr().String(), 2: ln2.Addr().String()}

	n1, err := tcp.New(tcp.Config{ID: 1, ClusterID: 99, Listener: ln1, Peers: peers})
	if err != nil {
		panic(err)
	}
	defer n1.Close()
	n2, err := tcp.New(tcp.Config{ID: 2, ClusterID: 99, Listener: ln2, Peers: peers})
	if err != nil {
		panic(err)
	}
	defer n2.Close()

	got := make(chan string, 1)
	_ = n1.Start(func(uint64, []byte) {})
	_ = n2.Start(func(from uint64, msg []byte) { got <- fmt.Sprintf("%d says %s", from, msg) })
	_ = n1.Send(2, []byte("hello")) // queued until node 1 has dialled node 2
	fmt.Println(<-got)
	// Output: 1 says hello
}
