package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// flakyRenew is a queue on a slow link: its first renewals of visibility
// fail (time out), and it records how many messages each renewal names.
type flakyRenew struct {
	*fakeQueue
	visibility time.Duration

	mu    sync.Mutex
	fails int
	sizes []int
}

func (f *flakyRenew) ChangeVisibilities(ctx context.Context, receipts []string, d time.Duration) error {
	if d == f.visibility {
		f.mu.Lock()
		f.sizes = append(f.sizes, len(receipts))
		fail := f.fails > 0
		if fail {
			f.fails--
		}
		f.mu.Unlock()
		if fail {
			return errors.New("slow link: renewal timed out")
		}
	}
	return f.fakeQueue.ChangeVisibilities(ctx, receipts, d)
}

// TestRenewalFailureIsRetried holds 25 jobs behind a slow card while the
// first renewals of their visibility fail: renewals name at most ten
// messages each, a failed one is tried again at the next tick, and no
// message reappears to be signed twice.
func TestRenewalFailureIsRetried(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x73)
	synctest.Test(t, func(t *testing.T) {
		const n = 25
		vis := 20 * time.Second
		q := &flakyRenew{fakeQueue: newFakeQueue(), visibility: vis, fails: 3}
		up := newFakeUploader()
		b, err := bridge.New(bridge.Options{
			Queue: q, Uploader: up, Logger: quietLogger(),
			Visibility: vis, MaxBacklog: n,
			Signers: []bridge.SignerSpec{keySpec("slow", "EBP1", key, 2*time.Second)},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx) }()
		for i := range n {
			q.sendJob(fmt.Sprintf("R%02d", i), "EBP1", time.Now().Add(time.Hour))
		}
		for q.len() > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		cancel()
		<-done
		q.mu.Lock()
		for _, s := range q.sizes {
			if s > 10 {
				t.Errorf("a renewal named %d messages, at most 10 fit one batch call", s)
			}
		}
		if len(q.sizes) <= 3 {
			t.Errorf("%d renewals: the failed ones were not tried again", len(q.sizes))
		}
		q.mu.Unlock()
		up.mu.Lock()
		defer up.mu.Unlock()
		for sid, c := range up.calls {
			if c != 1 {
				t.Errorf("session %s uploaded %d times: a failed renewal was taken for done", sid, c)
			}
		}
		if len(up.calls) != n {
			t.Errorf("%d sessions uploaded, want %d", len(up.calls), n)
		}
	})
}
