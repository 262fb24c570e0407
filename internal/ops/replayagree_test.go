package ops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/queue"
)

// TestReplayAgreesWithStore: for each request, a replay asked through the
// operator tools (what `ceb179 replay` runs) and one written straight to
// the store (DynamoDB's conditional write) give the same answer, the
// root's Replayable, on twin requests in the same state at the same time.
func TestReplayAgreesWithStore(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	assembleQ := queue.New(env.SQS, env.Queue("AssembleQueue"))
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	due := t0.Add(ceb179.Window)

	// Each setup brings a new request to a state, as the pipeline would.
	received := func(id string) error {
		_, _, err := store.CreateRequest(ctx, ceb179.Request{SessionID: id, OrderNo: "O-" + id, ReceivedAt: t0, Deadline: due, State: ceb179.StateReceived, Enqueued: true})
		return err
	}
	assembled := func(id string) error {
		if err := received(id); err != nil {
			return err
		}
		return store.SetState(ctx, id, ceb179.StateAssembled, "", ceb179.Assemblable)
	}
	signed := func(until time.Time) func(string) error {
		return func(id string) error {
			if err := assembled(id); err != nil {
				return err
			}
			_, err := store.ClaimUpload(ctx, id, "invocation-1", t0.Add(time.Second), until)
			return err
		}
	}
	finished := func(to ceb179.State) func(string) error {
		return func(id string) error {
			if err := signed(t0.Add(30 * time.Second))(id); err != nil {
				return err
			}
			return store.FinishUpload(ctx, id, "invocation-1", to, "test", t0.Add(2*time.Second))
		}
	}
	replayedAt := func(at time.Time) func(string) error {
		return func(id string) error {
			if err := finished(ceb179.StateFailed)(id); err != nil {
				return err
			}
			_, err := store.BeginReplay(ctx, ceb179.Replay{SessionID: id, By: "alice", Why: "first", At: at})
			return err
		}
	}
	lapsed := t0.Add(30 * time.Second)
	tests := []struct {
		name     string
		setup    func(string) error
		at       time.Time
		force    bool
		replayed bool
	}{
		{"fail in progress whose lease expired", signed(lapsed), t0.Add(time.Minute), false, false},
		{"ok in progress whose lease expired, forced", signed(lapsed), t0.Add(time.Minute), true, true},
		{"fail signed past due, in the late retries, lease expired", signed(lapsed), due.Add(time.Minute), false, false},
		{"ok signed past the late retries, lease expired", signed(lapsed), due.Add(ceb179.StuckAfter + time.Second), false, true},
		{"fail signed with a live lease, forced", signed(due.Add(time.Hour)), due.Add(time.Minute), true, false},
		{"fail assembled within its time", assembled, t0.Add(10 * time.Second), false, false},
		{"ok assembled past its time", assembled, due.Add(time.Second), false, true},
		{"ok failed", finished(ceb179.StateFailed), t0.Add(time.Minute), false, true},
		{"fail accepted", finished(ceb179.StateAccepted), due.Add(time.Hour), false, false},
		{"ok accepted, forced", finished(ceb179.StateAccepted), due.Add(time.Hour), true, true},
		{"fail replayed, within the replay's window", replayedAt(due.Add(time.Hour)), due.Add(time.Hour + time.Minute), false, false},
		{"ok replayed, past the replay's window", replayedAt(due.Add(time.Hour)), due.Add(time.Hour + ceb179.Window + time.Second), false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			viaOps, viaStore := fmt.Sprintf("AGREE-%02d-ops", i), fmt.Sprintf("AGREE-%02d-store", i)
			for _, id := range []string{viaOps, viaStore} {
				if err := tt.setup(id); err != nil {
					t.Fatalf("setup %s: %v", id, err)
				}
			}
			before, err := store.GetRequestView(ctx, viaOps)
			if err != nil {
				t.Fatal(err)
			}
			root := ceb179.Replayable(tt.force).Allows(before, tt.at, ceb179.Window)

			svc := ops.New(store, assembleQ, ops.WithClock(func() time.Time { return tt.at }))
			_, opsErr := svc.Replay(ctx, ops.ReplayRequest{SessionID: viaOps, By: "bob", Why: "agree", Force: tt.force})
			_, storeErr := store.BeginReplay(ctx, ceb179.Replay{SessionID: viaStore, By: "bob", Why: "agree", At: tt.at, Force: tt.force})
			for _, c := range []struct {
				via string
				id  string
				err error
			}{{"ceb179 replay", viaOps, opsErr}, {"the store", viaStore, storeErr}} {
				if c.err != nil && !errors.Is(c.err, ceb179.ErrRefused) {
					t.Fatalf("%s: %v", c.via, c.err)
				}
				if got := c.err == nil; got != tt.replayed || got != root {
					t.Errorf("%s replayed %v (%v), want %v; the root's Replayable says %v", c.via, got, c.err, tt.replayed, root)
				}
				v, err := store.GetRequestView(ctx, c.id)
				if err != nil {
					t.Fatal(err)
				}
				wantReplays := before.Replays
				if tt.replayed {
					wantReplays++
				}
				if v.Replays != wantReplays || (tt.replayed && (v.State != ceb179.StateReceived || v.LeaseOwner != "")) ||
					(!tt.replayed && v.State != before.State) {
					t.Errorf("%s left %s %s with %d replays (lease %q), was %s with %d", c.via, c.id, v.State, v.Replays, v.LeaseOwner, before.State, before.Replays)
				}
			}
		})
	}
}
