package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/ceb179/ceb179/internal/upload"
)

// handlerUploader lets the bridge call the real upload handler in-process
// with the JSON it would exchange through the Lambda Invoke API. It counts
// the RETRY answers.
type handlerUploader struct {
	h       *upload.Handler
	retries *atomic.Int32
}

func (u handlerUploader) Source(ctx context.Context, sid string) (ceb179.SourceAnswer, error) {
	var out ceb179.SourceAnswer
	err := u.call(ctx, ceb179.Invocation{Op: ceb179.OpSource, SessionID: sid}, &out)
	return out, err
}

func (u handlerUploader) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	req.Op = ceb179.OpUpload
	var out ceb179.UploadAnswer
	err := u.call(ctx, req, &out)
	if err == nil && out.State == ceb179.StateRetry {
		u.retries.Add(1)
	}
	return out, err
}

func (u handlerUploader) call(ctx context.Context, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var inv ceb179.Invocation
	if err := json.Unmarshal(b, &inv); err != nil {
		return err
	}
	ans, err := u.h.Invoke(ctx, inv)
	if err != nil {
		return err
	}
	if b, err = json.Marshal(ans); err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// dyingProcess is a bridge process killed right after it invoked the
// upload function, before the answer came: the invocation runs to its end
// (Lambda does not stop when its caller dies), and from that instant every
// call the process makes fails.
type dyingProcess struct {
	*killable
	invoked chan struct{} // closed when the fatal invocation started
	once    sync.Once
	lambda  sync.WaitGroup
}

func (d *dyingProcess) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	if !d.dead.CompareAndSwap(false, true) {
		return ceb179.UploadAnswer{}, errKilled
	}
	d.lambda.Go(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = d.u.Upload(lctx, req)
	})
	d.once.Do(func() { close(d.invoked) })
	return ceb179.UploadAnswer{}, errKilled
}

// TestKillAfterInvoke kills a bridge after it invoked the upload function
// and before the answer came, against the real upload handler, the
// emulated tables and queue, and the customs fake, which answers slowly,
// so the message comes back to a second bridge while the first invocation
// is still posting. Counted at the customs fake, each session is posted
// exactly once, and every one ends ACCEPTED with the queue empty.
func TestKillAfterInvoke(t *testing.T) {
	env := awstest.New(t)
	ctx := t.Context()
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	key := eporttest.NewSM2Key(t, 0x6A)
	const ebp = "EBP1"
	if err := store.PutCertificate(ctx, ceb179.Certificate{
		EbpCode: ebp, CertNo: signature.CertNo(key.Cert), PEM: key.CertPEM, NotAfter: key.Cert.NotAfter, RegisteredAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	cs := customssim.Serve(t)
	accepted := customssim.Accepted()
	accepted.Delay = 3 * time.Second // still posting when the message comes back
	cs.Fallback(accepted)
	client, err := customsapi.New(cs.UploadURL(), customsapi.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h := upload.New(store, upload.NewCertCache(store, time.Minute), client)

	url := env.Queue("SignQueue")
	sq := queue.New(env.SQS, url)
	const n = 3
	now := time.Now()
	for i := range n {
		sid := fmt.Sprintf("KA%02d", i)
		if _, _, err := store.CreateRequest(ctx, ceb179.Request{
			SessionID: sid, OrderNo: "ORD-" + sid, ServiceTime: now.UnixMilli(), ReceivedAt: now,
			Deadline: now.Add(ceb179.Window), State: ceb179.StateAssembled,
		}); err != nil {
			t.Fatal(err)
		}
		u := customs.Unsigned{SessionID: sid, Head: []byte(`{"guid":"G-` + sid + `","ebpCode":"EBP1"}`), Lists: []byte(`[]`), ServiceTime: fmt.Sprint(now.UnixMilli())}
		if _, _, err := store.CreatePending(ctx, ceb179.Pending{
			SessionID: sid, EbpCode: ebp, GUID: "G-" + sid, Head: u.Head, Lists: u.Lists, ServiceTime: u.ServiceTime,
			Digest: u.Digest(), Deadline: now.Add(ceb179.Window), CreatedAt: now,
		}); err != nil {
			t.Fatal(err)
		}
		if err := sq.Send(ctx, ceb179.SignJob{SessionID: sid, EbpCode: ebp, Deadline: now.Add(ceb179.Window).UnixMilli(), Digest: u.Digest()}); err != nil {
			t.Fatal(err)
		}
	}

	start := func(q bridge.Queue, u bridge.Uploader) func() {
		_, stop := runBridge(t, bridge.Options{
			Queue: q, Uploader: u, Logger: quietLogger(),
			Visibility: time.Second, ReceiveWait: time.Second, RetryDelay: 1500 * time.Millisecond,
			Signers: []bridge.SignerSpec{keySpec("a", ebp, key, 0)},
		})
		return stop
	}
	var retries atomic.Int32
	first := &dyingProcess{killable: &killable{q: queue.New(env.SQS, url), u: handlerUploader{h, new(atomic.Int32)}}, invoked: make(chan struct{})}
	stop := start(first, first)
	select {
	case <-first.invoked:
	case <-time.After(20 * time.Second):
		t.Fatal("the first bridge never invoked the upload function")
	}
	stop()
	stop = start(queue.New(env.SQS, url), handlerUploader{h, &retries})
	waitFor(t, 60*time.Second, "every session accepted", func() bool {
		for i := range n {
			r, err := store.GetRequest(ctx, fmt.Sprintf("KA%02d", i))
			if err != nil || r.State != ceb179.StateAccepted {
				return false
			}
		}
		return true
	})
	depth := queue.New(env.SQS, url)
	waitFor(t, 30*time.Second, "the queue empty", func() bool {
		w, f, err := depth.Depth(ctx)
		return err == nil && w == 0 && f == 0
	})
	stop()
	first.lambda.Wait()

	posts := map[string]int{}
	for _, up := range cs.Uploads() {
		var doc struct {
			SessionID string `json:"sessionID"`
		}
		if err := json.Unmarshal([]byte(up.PayExInfoStr), &doc); err != nil {
			t.Fatalf("customs received %q: %v", up.PayExInfoStr, err)
		}
		posts[doc.SessionID]++
	}
	if retries.Load() == 0 {
		t.Error("the second bridge never met the first invocation still posting: the case was not exercised")
	}
	if len(posts) != n {
		t.Errorf("%d sessions reached customs, want %d", len(posts), n)
	}
	for sid, p := range posts {
		if p != 1 {
			t.Errorf("session %s posted %d times", sid, p)
		}
	}
	left, err := sq.Receive(ctx, 10, time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d messages left in the queue", len(left))
	}
}
