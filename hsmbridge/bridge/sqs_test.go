package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// TestSQSKillAndRecover runs the bridge on the emulated SignQueue of
// template.yaml through the SQS adapter, kills it in the middle of the
// batch (from that instant every call it makes fails, and it gives nothing
// back), and starts a second bridge: the messages the first one held come
// back after their visibility timeout and every session reaches customs
// exactly once, with the queue empty at the end.
func TestSQSKillAndRecover(t *testing.T) {
	env := awstest.New(t)
	url := env.Queue("SignQueue")
	key := eporttest.NewRSAKey(t, 0x61)
	up := newFakeUploader()
	up.addCert(key.Cert)
	up.uploadLatency = 20 * time.Millisecond
	ctx := t.Context()

	const n = 30
	src := queue.New(env.SQS, url)
	for i := range n {
		if err := src.Send(ctx, signJob(fmt.Sprintf("Q%02d", i), "EBP1", time.Now().Add(2*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}

	start := func(k *killable) (context.CancelFunc, chan struct{}) {
		b, err := bridge.New(bridge.Options{
			Queue: k, Uploader: k, Logger: quietLogger(),
			Visibility: 2 * time.Second, ReceiveWait: time.Second,
			Signers: []bridge.SignerSpec{keySpec("a", "EBP1", key, 30*time.Millisecond)},
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); b.Run(rctx) }()
		return cancel, done
	}

	first := &killable{q: queue.New(env.SQS, url), u: up}
	cancel, done := start(first)
	waitFor(t, 20*time.Second, "first uploads", func() bool { return up.accepted() >= 10 })
	first.dead.Store(true)
	cancel()
	<-done
	if up.accepted() == n {
		t.Fatal("kill came too late: nothing left to recover")
	}

	second := &killable{q: queue.New(env.SQS, url), u: up}
	cancel, done = start(second)
	waitFor(t, 30*time.Second, "all sessions uploaded", func() bool { return up.accepted() == n })
	time.Sleep(500 * time.Millisecond) // the last deletes
	cancel()
	<-done

	up.mu.Lock()
	for sid, p := range up.posts {
		if p != 1 {
			t.Errorf("session %s posted %d times", sid, p)
		}
	}
	up.mu.Unlock()
	left, err := src.Receive(ctx, 10, 3*time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d messages left in the queue after recovery", len(left))
	}
}
