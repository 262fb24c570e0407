package bridge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/emmansun/gmsm/smx509"
)

// fakeQueue is an in-memory SQS queue with visibility timeouts and receipt
// handles that go stale on every receive, as in SQS.
type fakeQueue struct {
	mu      sync.Mutex
	msgs    []*fqMsg
	seq     int
	changed chan struct{}
	deletes int
}

type fqMsg struct {
	id        string
	body      string
	receipt   string
	visibleAt time.Time
	receives  int
}

func newFakeQueue() *fakeQueue { return &fakeQueue{changed: make(chan struct{})} }

func (q *fakeQueue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *fakeQueue) send(body string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	q.msgs = append(q.msgs, &fqMsg{id: fmt.Sprintf("m%d", q.seq), body: body, visibleAt: time.Now()})
	q.notify()
}

// sendJob sends a sign job for session sid of ebp due at deadline.
func (q *fakeQueue) sendJob(sid, ebp string, deadline time.Time) {
	b, _ := json.Marshal(signJob(sid, ebp, deadline))
	q.send(string(b))
}

// signJob is the sign job the assemble function would queue for sid.
func signJob(sid, ebp string, deadline time.Time) ceb179.SignJob {
	sum := sha256.Sum256([]byte(sourceOf(sid)))
	return ceb179.SignJob{SessionID: sid, EbpCode: ebp, Deadline: deadline.UnixMilli(), Digest: hex.EncodeToString(sum[:])}
}

func (q *fakeQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

func (q *fakeQueue) Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]queue.Message, error) {
	end := time.Now().Add(wait)
	for {
		q.mu.Lock()
		now := time.Now()
		var out []queue.Message
		next := end
		for _, m := range q.msgs {
			if len(out) == max {
				break
			}
			if m.visibleAt.After(now) {
				if m.visibleAt.Before(next) {
					next = m.visibleAt
				}
				continue
			}
			q.seq++
			m.receives++
			m.receipt = fmt.Sprintf("%s-r%d", m.id, q.seq)
			m.visibleAt = now.Add(visibility)
			out = append(out, queue.Message{ID: m.id, ReceiptHandle: m.receipt, Body: m.body, ReceiveCount: m.receives})
		}
		ch := q.changed
		q.mu.Unlock()
		if len(out) > 0 || !now.Before(end) {
			return out, nil
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

var errStale = errors.New("fake sqs: receipt handle is not current")

func (q *fakeQueue) Delete(_ context.Context, receipt string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, m := range q.msgs {
		if m.receipt == receipt {
			q.msgs = slices.Delete(q.msgs, i, i+1)
			q.deletes++
			return nil
		}
	}
	return errStale
}

func (q *fakeQueue) ChangeVisibilities(_ context.Context, receipts []string, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var errs []error
	for _, r := range receipts {
		found := false
		for _, m := range q.msgs {
			if m.receipt == r && m.visibleAt.After(now) {
				m.visibleAt = now.Add(d)
				found = true
			}
		}
		if !found {
			errs = append(errs, errStale)
		}
	}
	q.notify()
	return errors.Join(errs...)
}

// sourceOf is the sign source the fake upload function holds for sid.
func sourceOf(sid string) string {
	return `"sessionID":"` + sid + `"||"payExchangeInfoHead":"{}"||"payExchangeInfoLists":"[]"||"serviceTime":"1"`
}

// fakeUploader is the upload function: it serves sign sources, checks
// signatures when it knows the certificate, and posts to "customs". A call
// for a session that was already accepted when the call started is
// answered ACCEPTED without a post, as the real function does; every
// other call posts, and every post is counted, so calls that overlap post
// twice (the fake has no upload claim).
type fakeUploader struct {
	sourceLatency time.Duration
	uploadLatency time.Duration

	mu       sync.Mutex
	certs    map[string]*smx509.Certificate
	posts    map[string]int       // posts to customs per session, every one
	calls    map[string]int       // upload invokes per session
	postedAt map[string]time.Time // first post
	certNos  map[string]string    // certNo of the accepted upload
	uploads  int
	badSigs  int

	final        map[string]ceb179.State // sessions already in a final state
	retryForever map[string]bool         // sessions answered RETRY until the last delivery
	lastFlags    map[string][]bool       // lastDelivery of each upload call
}

func newFakeUploader() *fakeUploader {
	return &fakeUploader{
		certs: map[string]*smx509.Certificate{}, posts: map[string]int{},
		postedAt: map[string]time.Time{}, certNos: map[string]string{}, calls: map[string]int{},
		final: map[string]ceb179.State{}, retryForever: map[string]bool{}, lastFlags: map[string][]bool{},
	}
}

func (u *fakeUploader) addCert(c *smx509.Certificate) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.certs[signature.CertNo(c)] = c
}

func (u *fakeUploader) Source(ctx context.Context, sid string) (ceb179.SourceAnswer, error) {
	if err := clock.Sleep(ctx, u.sourceLatency); err != nil {
		return ceb179.SourceAnswer{}, err
	}
	u.mu.Lock()
	state := u.final[sid]
	u.mu.Unlock()
	if state != "" {
		return ceb179.SourceAnswer{SessionID: sid, State: state}, nil
	}
	src := sourceOf(sid)
	sum := sha256.Sum256([]byte(src))
	return ceb179.SourceAnswer{SessionID: sid, SignSource: src, Digest: hex.EncodeToString(sum[:])}, nil
}

func (u *fakeUploader) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	u.mu.Lock()
	u.uploads++
	u.calls[req.SessionID]++
	u.lastFlags[req.SessionID] = append(u.lastFlags[req.SessionID], req.LastDelivery)
	if u.retryForever[req.SessionID] {
		u.mu.Unlock()
		if err := clock.Sleep(ctx, u.uploadLatency); err != nil {
			return ceb179.UploadAnswer{}, err
		}
		if req.LastDelivery {
			return ceb179.UploadAnswer{SessionID: req.SessionID, State: ceb179.StateFailed, Message: "gave up"}, nil
		}
		return ceb179.UploadAnswer{SessionID: req.SessionID, State: ceb179.StateRetry, Message: "customs unreachable"}, nil
	}
	if c := u.certs[req.CertNo]; c != nil {
		if err := signature.Verify(c, []byte(sourceOf(req.SessionID)), req.SignValue); err != nil {
			u.badSigs++
			u.mu.Unlock()
			return ceb179.UploadAnswer{SessionID: req.SessionID, State: ceb179.StateRejected, Message: "bad signature"}, nil
		}
	}
	if u.final[req.SessionID] != "" {
		// Already final when this call started: answered without a post,
		// as the real function does.
		state := u.final[req.SessionID]
		u.mu.Unlock()
		return ceb179.UploadAnswer{SessionID: req.SessionID, State: state}, nil
	}
	// The post: every one is counted, and it takes uploadLatency outside
	// the lock, so two calls that overlap both post, as they would without
	// the real function's upload claim.
	u.posts[req.SessionID]++
	if u.posts[req.SessionID] == 1 {
		u.postedAt[req.SessionID] = time.Now()
		u.certNos[req.SessionID] = req.CertNo
	}
	u.mu.Unlock()
	if err := clock.Sleep(ctx, u.uploadLatency); err != nil {
		return ceb179.UploadAnswer{}, err
	}
	u.mu.Lock()
	u.final[req.SessionID] = ceb179.StateAccepted
	u.mu.Unlock()
	return ceb179.UploadAnswer{SessionID: req.SessionID, State: ceb179.StateAccepted}, nil
}

func (u *fakeUploader) accepted() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.posts)
}

// killable wraps the queue and uploader of one bridge process: after
// kill, every call fails, as if the process were gone.
type killable struct {
	q    bridge.Queue
	u    bridge.Uploader
	dead atomic.Bool
}

var errKilled = errors.New("process killed")

func (k *killable) Receive(ctx context.Context, max int, wait, vis time.Duration) ([]queue.Message, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return k.q.Receive(ctx, max, wait, vis)
}

func (k *killable) Delete(ctx context.Context, r string) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.q.Delete(ctx, r)
}

func (k *killable) ChangeVisibilities(ctx context.Context, rs []string, d time.Duration) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.q.ChangeVisibilities(ctx, rs, d)
}

func (k *killable) Source(ctx context.Context, sid string) (ceb179.SourceAnswer, error) {
	if k.dead.Load() {
		return ceb179.SourceAnswer{}, errKilled
	}
	return k.u.Source(ctx, sid)
}

func (k *killable) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	if k.dead.Load() {
		return ceb179.UploadAnswer{}, errKilled
	}
	return k.u.Upload(ctx, req)
}

// pacedSigner makes a real signer sign at a card's pace: one signature per
// interval, one at a time, without drift.
type pacedSigner struct {
	signer.Signer
	interval time.Duration

	mu       sync.Mutex
	nextFree time.Time
}

func (p *pacedSigner) Sign(ctx context.Context, src []byte) (string, error) {
	p.mu.Lock()
	start := p.nextFree
	if now := time.Now(); now.After(start) {
		start = now
	}
	done := start.Add(p.interval)
	p.nextFree = done
	p.mu.Unlock()
	if err := clock.Sleep(ctx, time.Until(done)); err != nil {
		return "", fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	return p.Signer.Sign(ctx, src)
}

func (p *pacedSigner) Concurrency() int { return 1 }
