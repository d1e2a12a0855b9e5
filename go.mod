module github.com/replog/replog

go 1.26.0

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/cespare/xxhash/v2 v2.3.0
	go.etcd.io/bbolt v1.5.0
	go.etcd.io/raft/v3 v3.7.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.45.0
	google.golang.org/protobuf v1.36.11
)

require golang.org/x/sync v0.25.0 // indirect
