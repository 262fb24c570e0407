package bridge_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// TestUploadContract covers the answers of docs/architecture.md: a session
// already final is dropped without signing; RETRY leaves the message to
// come back after the visibility timeout; the delivery that reaches
// maxReceiveCount is uploaded with lastDelivery and its FAILED answer
// deletes the message.
func TestUploadContract(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x51)
	synctest.Test(t, func(t *testing.T) {
		q, up := newFakeQueue(), newFakeUploader()
		up.final["done"] = ceb179.StateAccepted
		up.retryForever["stuck"] = true
		b, err := bridge.New(bridge.Options{
			Queue: q, Uploader: up, Logger: quietLogger(), Visibility: 60 * time.Second, MaxReceiveCount: 3,
			Signers: []bridge.SignerSpec{keySpec("a", "EBP1", key, 10*time.Millisecond)},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx) }()
		start := time.Now()
		for _, sid := range []string{"done", "stuck", "fine"} {
			q.sendJob(sid, "EBP1", time.Now().Add(2*time.Minute))
		}
		for q.len() > 0 && time.Since(start) < 10*time.Minute {
			time.Sleep(time.Second)
		}
		took := time.Since(start)
		cancel()
		<-done

		if q.len() != 0 {
			t.Fatalf("%d messages left", q.len())
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		if up.calls["done"] != 0 {
			t.Errorf("final session uploaded %d times, want 0", up.calls["done"])
		}
		if got := up.lastFlags["stuck"]; len(got) != 3 || got[0] || got[1] || !got[2] {
			t.Errorf("lastDelivery flags of the stuck session = %v, want [false false true]", got)
		}
		if took < 2*time.Minute {
			t.Errorf("two RETRY answers took %v; each should wait out the visibility timeout", took)
		}
		st := b.Status().Totals
		if st.AlreadyFinal != 1 || st.Failed != 1 || st.OnTime != 1 {
			t.Errorf("totals = %+v", st)
		}
	})
}
