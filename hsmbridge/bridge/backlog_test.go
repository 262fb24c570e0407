package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// TestBacklogAndVisibility holds more jobs than a slow card can sign within
// the visibility timeout: the bridge must keep at most MaxBacklog jobs in
// memory (the rest wait in the queue), and keep extending the visibility of
// those it holds so that no message is delivered twice.
func TestBacklogAndVisibility(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x71)
	for _, tc := range []struct {
		name    string
		backlog int
	}{
		{"ok backlog of 5", 5},
		{"ok backlog of 40", 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 60
				q, up := newFakeQueue(), newFakeUploader()
				b, err := bridge.New(bridge.Options{
					Queue: q, Uploader: up, Logger: quietLogger(),
					Visibility: 20 * time.Second, MaxBacklog: tc.backlog,
					Signers: []bridge.SignerSpec{keySpec("slow", "EBP1", key, 2*time.Second)},
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); b.Run(ctx) }()
				for i := range n {
					q.sendJob(fmt.Sprintf("B%02d", i), "EBP1", time.Now().Add(time.Hour))
				}
				peak := 0
				for q.len() > 0 {
					peak = max(peak, b.Status().InMemory)
					time.Sleep(500 * time.Millisecond)
				}
				cancel()
				<-done
				if peak > tc.backlog {
					t.Errorf("held %d jobs, backlog is %d", peak, tc.backlog)
				}
				if peak < tc.backlog {
					t.Errorf("held at most %d jobs; expected the backlog (%d) to fill", peak, tc.backlog)
				}
				up.mu.Lock()
				defer up.mu.Unlock()
				for sid, c := range up.calls {
					if c != 1 {
						t.Errorf("session %s uploaded %d times: its visibility was not kept", sid, c)
					}
				}
				if len(up.calls) != n {
					t.Errorf("%d sessions uploaded, want %d", len(up.calls), n)
				}
			})
		})
	}
}

// TestGracefulStopGivesJobsBack stops a bridge that holds jobs it has not
// signed yet: they must be visible in the queue at once, not after their
// visibility timeout.
func TestGracefulStopGivesJobsBack(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x72)
	synctest.Test(t, func(t *testing.T) {
		q, up := newFakeQueue(), newFakeUploader()
		b, err := bridge.New(bridge.Options{
			Queue: q, Uploader: up, Logger: quietLogger(), Visibility: time.Minute,
			Signers: []bridge.SignerSpec{keySpec("slow", "EBP1", key, 10*time.Second)},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx) }()
		for i := range 20 {
			q.sendJob(fmt.Sprintf("G%02d", i), "EBP1", time.Now().Add(time.Hour))
		}
		time.Sleep(35 * time.Second)
		cancel()
		<-done
		left := q.len()
		msgs, err := q.Receive(t.Context(), 10, 0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 || left == 20 || len(msgs) != min(left, 10) {
			t.Errorf("%d messages left, %d visible at once; want all left visible", left, len(msgs))
		}
		if got := b.Status().Totals.GivenBack; int(got) != left {
			t.Errorf("given back %d, want %d", got, left)
		}
	})
}
