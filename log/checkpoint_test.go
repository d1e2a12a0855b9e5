package log

import (
	"errors"
	"reflect"
	"testing"
)

func sampleCheckpoint() *checkpoint {
	return &checkpoint{
		CoverPos: 5000, CoverOffset: 700, HighWater: 650, StartOffset: 100,
		Epochs: []EpochEntry{{1, 100}, {3, 400}},
		Index:  []indexEntry{{100, 24, 5}, {300, 2024, 9}, {600, 4024, 7}},
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	c := sampleCheckpoint()
	got, err := decodeCheckpoint(encodeCheckpoint(c))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("got %+v, want %+v", got, c)
	}
	empty := &checkpoint{Epochs: []EpochEntry{}, Index: []indexEntry{}}
	if got, err := decodeCheckpoint(encodeCheckpoint(empty)); err != nil || !reflect.DeepEqual(got, empty) {
		t.Fatalf("empty: %+v %v", got, err)
	}
}

func TestCheckpointRejects(t *testing.T) {
	good := encodeCheckpoint(sampleCheckpoint())
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if _, err := decodeCheckpoint(b); !errors.Is(err, ErrBadCheckpoint) {
			t.Fatalf("flip at %d accepted: %v", i, err)
		}
	}
	bad := sampleCheckpoint()
	bad.HighWater = 701
	if _, err := decodeCheckpoint(encodeCheckpoint(bad)); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("hw above the end accepted: %v", err)
	}
	bad = sampleCheckpoint()
	bad.StartOffset = 701
	if _, err := decodeCheckpoint(encodeCheckpoint(bad)); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("start above the end accepted: %v", err)
	}
	bad = sampleCheckpoint()
	bad.Index[2].Pos = 5000
	if _, err := decodeCheckpoint(encodeCheckpoint(bad)); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("index beyond cover accepted: %v", err)
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(encodeCheckpoint(sampleCheckpoint()))
	f.Add([]byte(checkpointMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCheckpoint(data)
		if err != nil {
			return
		}
		if len(c.Index)*indexEntrySize > len(data) || len(c.Epochs)*epochEntrySize > len(data) {
			t.Fatal("entries beyond the input size")
		}
		again, err := decodeCheckpoint(encodeCheckpoint(c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
