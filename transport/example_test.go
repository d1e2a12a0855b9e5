package transport_test

import (
	"fmt"

	"github.com/replog/replog/transport"
)

func ExampleMemNetwork() {
	net := transport.NewMemNetwork(42)
	defer net.Close()
	a, b := net.Endpoint(1), net.Endpoint(2)
	got := make(chan string, 1)
	_ = a.Start(func(uint64, []byte) {})
	_ = b.Start(func(from uint64, msg []byte) { got <- fmt.Sprintf("%d says %s", from, msg) })

	net.Isolate(2)
	_ = a.Send(2, []byte("lost")) // dropped silently, as a real network would
	net.Heal()
	_ = a.Send(2, []byte("hello"))
	fmt.Println(<-got)
	st := net.Stats()
	fmt.Println("sent", st.Sent, "delivered", st.Delivered, "dropped", st.Dropped())
	// Output:
	// 1 says hello
	// sent 2 delivered 1 dropped 1
}
