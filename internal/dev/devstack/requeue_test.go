package devstack

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/emulator"
	"github.com/ceb179/ceb179/internal/ingest"
)

// forgetful pretends to queue while forget is set: ingest records the
// request as queued, and no message exists, as after an emulator restart
// that forgot it.
type forgetful struct {
	ingest.Sender
	forget *atomic.Bool
}

func (f forgetful) Send(ctx context.Context, v any) error {
	if f.forget.Load() {
		return nil
	}
	return f.Sender.Send(ctx, v)
}

// TestRequeueOnStart starts a stack again on the state of another whose
// messages were lost as the emulator loses messages in flight: one
// request RECEIVED with no assemble message, one ASSEMBLED whose sign job
// is gone. With KeptState the new stack queues both again and both are
// uploaded, each posted once; a request already ACCEPTED is left alone.
// Without KeptState neither moves.
func TestRequeueOnStart(t *testing.T) {
	for _, tt := range []struct {
		name      string
		keptState bool
	}{
		{"ok kept state: the work of requests not final is queued again", true},
		{"ok no kept state: nothing is queued again", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var forget atomic.Bool
			o := drillOptions()
			o.Prefix, o.DataDir = emulator.NewPrefix(t.Name()), t.TempDir()
			o.Faults.IngestQueue = func(s ingest.Sender) ingest.Sender { return forgetful{s, &forget} }
			first := startStack(t, o)
			done, received, assembled := sessionIDs("requeue-done", 1)[0], sessionIDs("requeue-received", 1)[0], sessionIDs("requeue-assembled", 1)[0]
			ask(t, first, first.DemoOrders[0], done)
			waitState(t, first, done, 20*time.Second)

			forget.Store(true)
			ask(t, first, first.DemoOrders[1], received)
			forget.Store(false)
			first.StopBridge()
			ask(t, first, first.DemoOrders[2], assembled)
			waitFor(t, 20*time.Second, "assembled", func() bool {
				r, err := first.Store.GetRequest(context.Background(), assembled)
				return err == nil && r.State == ceb179.StateAssembled
			})
			// The sign job is taken out of sight, as an emulator restart
			// forgets a message in flight.
			if msgs, err := first.signQ.Receive(context.Background(), 10, time.Second, 10*time.Minute); err != nil || len(msgs) != 1 {
				t.Fatalf("sign queue: %d messages, %v", len(msgs), err)
			}
			_ = first.Close()

			o.KeptState, o.Faults = tt.keptState, Faults{}
			second := startStack(t, o)
			if !tt.keptState {
				time.Sleep(5 * time.Second)
				for _, id := range []string{received, assembled} {
					if n := second.Sim.PostsFor(id); n != 0 {
						t.Errorf("%s posted %d times without being queued again", id, n)
					}
				}
				if second.Requeued != 0 {
					t.Errorf("%d queued again without kept state", second.Requeued)
				}
				return
			}
			if second.Requeued != 2 {
				t.Errorf("%d requests queued again, want 2", second.Requeued)
			}
			for _, id := range []string{received, assembled} {
				if r := waitState(t, second, id, 30*time.Second); r.State != ceb179.StateAccepted {
					t.Errorf("%s ended %s, want ACCEPTED", id, r.State)
				}
				if n := second.Sim.PostsFor(id); n != 1 {
					t.Errorf("%s posted %d times, want once", id, n)
				}
			}
			if n := second.Sim.PostsFor(done); n != 0 {
				t.Errorf("%s, ACCEPTED before the restart, posted %d times again", done, n)
			}
			v, err := second.Store.GetRequestView(context.Background(), assembled)
			if err != nil || v.Settles != 1 || v.LastSettleWhy != requeueWhy {
				t.Errorf("%s: settles %d %q (%v), want the requeue noted", assembled, v.Settles, v.LastSettleWhy, err)
			}
		})
	}
}

// waitFor polls cond every 50 ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s after %v", what, d)
		}
	}
}
