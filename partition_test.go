package replog

import "testing"

// The mapping is a contract: these values must never change.
func TestPartitionForIsStable(t *testing.T) {
	tests := []struct {
		key        string
		partitions int32
		want       int32
	}{
		{"", 1, 0},
		{"", 7, int32(0xef46db3751d8e999 % 7)}, // xxhash64 of the empty input
		{"order-42", 1, 0},
	}
	for _, tt := range tests {
		if got := PartitionFor([]byte(tt.key), tt.partitions); got != tt.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", tt.key, tt.partitions, got, tt.want)
		}
	}
	// Recorded from this implementation when the mapping was fixed
	// (xxhash64("a") is 0xd24ec4f1a98c6e5b, 11 mod 12). A change here breaks
	// every user's key-to-partition mapping.
	golden := map[string]int32{"a": 11, "user-1": 4, "user-2": 9, "order-42": 6, "\x00\xff": 5}
	for k, want := range golden {
		if got := PartitionFor([]byte(k), 12); got != want {
			t.Errorf("PartitionFor(%q, 12) = %d, want %d", k, got, want)
		}
	}
}

func TestPartitionForSpreads(t *testing.T) {
	const n = 8
	var counts [n]int
	for i := range 8000 {
		counts[PartitionFor([]byte{byte(i), byte(i >> 8), 'k'}, n)]++
	}
	for p, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("partition %d got %d of 8000 keys; want about 1000", p, c)
		}
	}
}

func TestPartitionForPanicsOnNoPartitions(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("PartitionFor(key, 0) did not panic")
		}
	}()
	PartitionFor([]byte("k"), 0)
}
