package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/ingest"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/upload"
)

// Fault drills: each breaks one part of the local pipeline, with time
// compressed (a window of seconds instead of two minutes), and ends with
// every request final and no session posted twice. Posts are counted where
// they arrive: the customs simulator's own record of uploads.

// drillWindow is the compressed customs window of the drills.
const drillWindow = 5 * time.Second

// drillOptions are the compressed timings every drill shares.
func drillOptions() Options {
	return Options{Window: drillWindow, GiveUp: time.Minute, LatePace: time.Second,
		SettleEvery: time.Second, SignVisibility: time.Second}
}

// drillReport checks that every session is final and posted to the
// simulator once at most (exactly once when ACCEPTED), and returns the
// count of each outcome.
func drillReport(t *testing.T, s *Stack, ids []string, within time.Duration) map[ops.Outcome]int {
	t.Helper()
	counts := map[ops.Outcome]int{}
	for _, id := range ids {
		waitState(t, s, id, within)
	}
	for _, id := range ids {
		v, err := s.Store.GetRequestView(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out := ops.OutcomeOf(v, time.Now())
		counts[out]++
		switch posts := s.Sim.PostsFor(id); {
		case posts > 1:
			t.Errorf("%s posted to customs %d times", id, posts)
		case v.State == ceb179.StateAccepted && posts != 1:
			t.Errorf("%s ACCEPTED with %d posts at customs", id, posts)
		}
	}
	return counts
}

func sessionIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), i)
	}
	return ids
}

// TestDrillBridgeOff: the bridge is off while requests arrive for longer
// than their window, then comes back: every request is uploaded late and
// counted late, none lost.
func TestDrillBridgeOff(t *testing.T) {
	t.Parallel()
	s := startStack(t, drillOptions())
	s.StopBridge()
	ids := sessionIDs("bridge-off", 10)
	for i, id := range ids {
		if code := ask(t, s, s.DemoOrders[i%len(s.DemoOrders)], id); code != "10000" {
			t.Fatalf("ack %s", code)
		}
		time.Sleep(drillWindow / 5) // requests over two windows
	}
	time.Sleep(drillWindow + time.Second) // every deadline has passed
	if err := s.StartBridge(); err != nil {
		t.Fatal(err)
	}
	counts := drillReport(t, s, ids, 40*time.Second)
	t.Logf("bridge off for %d requests over %v: %v, posts at customs %d", len(ids), 3*drillWindow, counts, s.Sim.Posts())
	if counts[ops.OutcomeLate] != len(ids) {
		t.Errorf("outcomes %v, want all %d late", counts, len(ids))
	}
}

// TestDrillNoSigner: no usable signer. A request whose signer never comes
// back within its give-up window is settled FAILED with a reason; one
// whose signer comes back inside the window is uploaded late.
func TestDrillNoSigner(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	o := drillOptions()
	o.GiveUp = 10 * time.Second
	o.Faults.SignerDown = down.Load
	s := startStack(t, o)

	lost := sessionIDs("no-signer-lost", 2)
	for _, id := range lost {
		ask(t, s, s.DemoOrders[0], id)
	}
	counts := drillReport(t, s, lost, 45*time.Second)
	for _, id := range lost {
		v, _ := s.Store.GetRequestView(context.Background(), id)
		if v.State != ceb179.StateFailed || v.Reason == "" {
			t.Errorf("%s: %s %q, want FAILED with a reason", id, v.State, v.Reason)
		}
		t.Logf("%s: %s, settler actions %d: %s", id, v.State, v.Settles, v.Reason)
	}
	t.Logf("signer never back: %v", counts)

	saved := sessionIDs("no-signer-saved", 2)
	for _, id := range saved {
		ask(t, s, s.DemoOrders[1], id)
	}
	time.Sleep(drillWindow + 2*time.Second) // past the deadline, inside the give-up window
	down.Store(false)
	counts = drillReport(t, s, saved, 45*time.Second)
	t.Logf("signer back after the deadline: %v", counts)
	if counts[ops.OutcomeLate] != len(saved) {
		t.Errorf("outcomes %v, want all late", counts)
	}
}

// failingSender fails while down.
type failingSender struct {
	ingest.Sender
	down *atomic.Bool
}

func (f failingSender) Send(ctx context.Context, v any) error {
	if f.down.Load() {
		return errors.New("queue unavailable")
	}
	return f.Sender.Send(ctx, v)
}

// TestDrillIngestQueueDown: ingest records a request but cannot queue it,
// and customs never asks again: the settler queues it.
func TestDrillIngestQueueDown(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	o := drillOptions()
	o.Window = 20 * time.Second
	o.Faults.IngestQueue = func(q ingest.Sender) ingest.Sender { return failingSender{Sender: q, down: &down} }
	s := startStack(t, o)
	down.Store(true)
	ids := sessionIDs("queue-down", 1)
	code := ask(t, s, s.DemoOrders[0], ids[0])
	down.Store(false)
	req, err := s.Store.GetRequest(context.Background(), ids[0])
	if err != nil || req.Enqueued {
		t.Fatalf("request %+v %v: want recorded and not queued", req, err)
	}
	counts := drillReport(t, s, ids, 30*time.Second)
	v, _ := s.Store.GetRequestView(context.Background(), ids[0])
	t.Logf("ingest answered %s; %v; settler: %q", code, counts, v.LastSettleWhy)
	if v.State != ceb179.StateAccepted || v.Settles == 0 {
		t.Errorf("state %s, settler actions %d; want ACCEPTED after the settler queued it", v.State, v.Settles)
	}
}

// TestDrillCustomsDown: customs answers 503 for four windows (the ten
// minutes of a two-minute window, compressed): retries go on past the sign
// job's deliveries and everything is accepted once customs is back.
func TestDrillCustomsDown(t *testing.T) {
	t.Parallel()
	var (
		down     atomic.Bool
		refusedN atomic.Int64
	)
	down.Store(true)
	o := drillOptions()
	o.Faults.Customs = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				refusedN.Add(1)
				http.Error(w, "service unavailable", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	s := startStack(t, o)
	ids := sessionIDs("customs-down", 5)
	for i, id := range ids {
		ask(t, s, s.DemoOrders[i%len(s.DemoOrders)], id)
	}
	time.Sleep(4 * drillWindow)
	during := refusedN.Load()
	down.Store(false)
	counts := drillReport(t, s, ids, 40*time.Second)
	resent := s.Metrics["settle"].Total("SignJobResent")
	t.Logf("customs down %v: %d posts answered 503 for %d requests, %v sign jobs sent again by the settler; then %v",
		4*drillWindow, during, len(ids), resent, counts)
	if counts[ops.OutcomeLate]+counts[ops.OutcomeOnTime] != len(ids) {
		t.Errorf("outcomes %v, want all accepted", counts)
	}
	if during < int64(len(ids))*6 {
		t.Errorf("only %d posts while customs was down: retries stopped early", during)
	}
}

// finishFailsOnce fails the first FinishUpload to ACCEPTED of each session.
type finishFailsOnce struct {
	upload.Store
	mu     sync.Mutex
	failed map[string]bool
}

func (f *finishFailsOnce) FinishUpload(ctx context.Context, id, owner string, to ceb179.State, reason string, last time.Time) error {
	f.mu.Lock()
	first := to == ceb179.StateAccepted && !f.failed[id]
	if first {
		f.failed[id] = true
	}
	f.mu.Unlock()
	if first {
		return fmt.Errorf("finish upload %s: %w", id, errors.New("table unavailable"))
	}
	return f.Store.FinishUpload(ctx, id, owner, to, reason, last)
}

// TestDrillFinishUploadFails: the write of customs' acceptance fails once;
// the session still ends ACCEPTED, posted once.
func TestDrillFinishUploadFails(t *testing.T) {
	t.Parallel()
	o := drillOptions()
	o.Window = 20 * time.Second
	faulty := &finishFailsOnce{failed: map[string]bool{}}
	o.Faults.UploadStore = func(st upload.Store) upload.Store { faulty.Store = st; return faulty }
	s := startStack(t, o)
	ids := sessionIDs("finish-fails", 3)
	for _, id := range ids {
		ask(t, s, s.DemoOrders[0], id)
	}
	counts := drillReport(t, s, ids, 30*time.Second)
	t.Logf("FinishUpload failed once per session: %v", counts)
	if counts[ops.OutcomeOnTime] != len(ids) {
		t.Errorf("outcomes %v, want all ACCEPTED on time", counts)
	}
	faulty.mu.Lock()
	defer faulty.mu.Unlock()
	if len(faulty.failed) != len(ids) {
		t.Errorf("the fault hit %d sessions, want %d", len(faulty.failed), len(ids))
	}
}
