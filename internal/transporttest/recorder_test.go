package transporttest

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"
)

func msg(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- r.WaitFor(ctx, 1, 2)
	}()
	r.Handle(1, msg(1))
	r.Handle(2, msg(9))
	r.Handle(1, msg(2))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.Seqs(1); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("Seqs(1) = %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitFor(ctx, 2, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitFor with an ended ctx: %v", err)
	}
}
