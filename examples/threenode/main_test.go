package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The walk-through runs to the end on the fake clock.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out bytes.Buffer
		err := run(ctx, &out, 500*time.Millisecond)
		if err != nil {
			t.Fatalf("run: %v\noutput so far:\n%s", err, out.String())
		}
		for _, want := range []string{"took over as leader", "Nothing acknowledged was lost", "caught up", "Done."} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
}
