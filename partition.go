package replog

import "github.com/cespare/xxhash/v2"

// PartitionFor maps a key to one of partitions partitions: xxhash64(key)
// modulo partitions. The mapping is part of replog's contract and never
// changes, so records with one key always go to one partition as long as
// the topic's partition count stays the same.
//
// partitions must be at least 1; PartitionFor panics otherwise, as
// math/rand's Intn does for a bound that is not positive.
func PartitionFor(key []byte, partitions int32) int32 {
	if partitions < 1 {
		panic("replog: PartitionFor with fewer than 1 partition")
	}
	return int32(xxhash.Sum64(key) % uint64(partitions))
}
