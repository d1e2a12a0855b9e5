package replog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/replog/replog/log"
	"github.com/replog/replog/meta"
	"github.com/replog/replog/replication"
	"github.com/replog/replog/wal"
)

func TestTranslateKeepsSentinelAndCause(t *testing.T) {
	tests := []struct {
		cause error
		want  error
	}{
		{meta.ErrUnknownTopic, ErrUnknownTopic},
		{meta.ErrUnknownPartition, ErrUnknownPartition},
		{meta.ErrTopicExists, ErrTopicExists},
		{meta.ErrInvalidArgument, ErrInvalidArgument},
		{meta.ErrNotEnoughNodes, ErrNotEnoughReplicas},
		{meta.ErrClosed, ErrClosed},
		{replication.ErrClosed, ErrClosed},
		{replication.ErrNotEnoughReplicas, ErrNotEnoughReplicas},
		{replication.ErrRecordTooLarge, ErrRecordTooLarge},
		{replication.ErrInvalidArgument, ErrInvalidArgument},
		{log.ErrBatchTooLarge, ErrRecordTooLarge},
		{log.ErrOffsetOutOfRange, ErrOffsetOutOfRange},
		{log.ErrInvalidRecord, ErrInvalidArgument},
		{wal.ErrStorageStalled, ErrStorageStalled},
		{replication.ErrNotLeader, ErrNotLeader},
	}
	for _, tt := range tests {
		cause := fmt.Errorf("deep: %w", tt.cause)
		err := translate("op", cause)
		if !errors.Is(err, tt.want) || !errors.Is(err, tt.cause) {
			t.Errorf("translate(%v) = %v: want both %v and the cause", cause, err, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "replog: ") || !strings.Contains(err.Error(), "deep: ") {
			t.Errorf("message %q: want the replog: prefix and the cause's text", err)
		}
	}
	if translate("op", nil) != nil {
		t.Error("translate(nil) is not nil")
	}
}

func TestTranslateNotLeaderCarriesLeader(t *testing.T) {
	err := translate("append", fmt.Errorf("forward: %w", &replication.NotLeaderError{Leader: 3}))
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.Leader != 3 || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("translate = %v: want a *NotLeaderError{Leader: 3} matching ErrNotLeader", err)
	}
	var inner *replication.NotLeaderError
	if !errors.As(err, &inner) {
		t.Fatalf("the replication cause is lost in %v", err)
	}
	if got := (&NotLeaderError{}).Error(); !strings.Contains(got, "unknown") {
		t.Errorf("NotLeaderError{}.Error() = %q", got)
	}
}

func TestTranslateContextErrors(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		// A context error wins over a sentinel it travels with.
		err := translate("read", fmt.Errorf("%w: %w", meta.ErrUnknownTopic, cause))
		if !errors.Is(err, cause) || errors.Is(err, ErrUnknownTopic) {
			t.Errorf("translate(%v) = %v: want only the context error", cause, err)
		}
		// But an append that waited for the ISR matches ErrNotEnoughReplicas too.
		err = translate("append", fmt.Errorf("%w while the ISR was short: %w", cause, replication.ErrNotEnoughReplicas))
		if !errors.Is(err, cause) || !errors.Is(err, ErrNotEnoughReplicas) {
			t.Errorf("translate(%v with a short ISR) = %v: want both", cause, err)
		}
	}
	other := errors.New("disk on fire")
	if err := translate("open", other); !errors.Is(err, other) || !strings.HasPrefix(err.Error(), "replog: open: ") {
		t.Errorf("translate(unknown) = %v", err)
	}
}
