package dynamo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

// open lists the sessionIDs the open index holds with a deadline up to
// until.
func open(tb testing.TB, e paymentsEnv, until time.Time) []string {
	tb.Helper()
	var ids []string
	_, err := e.store.OpenRequests(context.Background(), time.UnixMilli(0), until, 1000, func(v ceb179.RequestView) error {
		ids = append(ids, v.SessionID)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// TestOpenIndexFollowsTheState: a request is in the open index exactly
// while it is not final, whichever write moves it: recorded, assembled,
// claimed for upload, released, finished, settled, replayed.
func TestOpenIndexFollowsTheState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPaymentsEnv(t, 0)
	at := time.UnixMilli(1790000000000)
	until := at.Add(time.Hour)
	for _, id := range []string{"A", "B", "C", "D"} {
		if _, _, err := e.store.CreateRequest(ctx, ceb179.Request{SessionID: id, OrderNo: "O", ReceivedAt: at, Deadline: at.Add(ceb179.Window)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.store.CreateRequest(ctx, ceb179.Request{SessionID: "F", OrderNo: "O", ReceivedAt: at, Deadline: at.Add(ceb179.Window), State: ceb179.StateFailed}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"ok recorded requests are open, a final one is not", func() error { return nil }, []string{"A", "B", "C", "D"}},
		{"ok assembled stays open", func() error { return e.store.SetState(ctx, "A", ceb179.StateAssembled, "", ceb179.Assemblable) }, []string{"A", "B", "C", "D"}},
		{"ok NO_DATA leaves", func() error { return e.store.SetState(ctx, "B", ceb179.StateNoData, "no record", ceb179.Assemblable) }, []string{"A", "C", "D"}},
		{"ok claimed and released stays open", func() error {
			if _, err := e.store.ClaimUpload(ctx, "A", "o1", at, at.Add(time.Minute)); err != nil {
				return err
			}
			return e.store.ReleaseUpload(ctx, "A", "o1", "retry", at)
		}, []string{"A", "C", "D"}},
		{"ok finished upload leaves", func() error {
			if _, err := e.store.ClaimUpload(ctx, "A", "o2", at, at.Add(time.Minute)); err != nil {
				return err
			}
			return e.store.FinishUpload(ctx, "A", "o2", ceb179.StateAccepted, "上传成功", at)
		}, []string{"C", "D"}},
		{"ok settled FAILED leaves", func() error {
			_, err := e.store.SettleFailed(ctx, "C", "gave up", at.Add(48*time.Hour))
			return err
		}, []string{"D"}},
		{"ok a settler's note keeps it open", func() error {
			_, err := e.store.NoteSettle(ctx, "D", "queued", at, ceb179.Requeueable)
			return err
		}, []string{"D"}},
		{"ok a replay brings a final request back", func() error {
			_, err := e.store.BeginReplay(ctx, ceb179.Replay{SessionID: "F", By: "op", Why: "again", At: at})
			return err
		}, []string{"D", "F"}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := open(t, e, until); !slices.Equal(got, st.want) {
			t.Fatalf("%s: open index %v, want %v", st.name, got, st.want)
		}
	}
	// Ranges of deadlines: none open before the requests' deadline.
	if got := open(t, e, at); len(got) != 0 {
		t.Errorf("open with a deadline up to %v: %v, want none", at, got)
	}
}
