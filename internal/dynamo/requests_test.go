package dynamo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

func TestCreateRequestOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPaymentsEnv(t, 0)
	at := time.UnixMilli(1790000000000)
	first := ceb179.Request{SessionID: "S1", OrderNo: "O1", ServiceTime: 1, ReceivedAt: at, Deadline: at.Add(ceb179.Window), SourceIP: "203.0.113.10"}
	got, created, err := e.store.CreateRequest(ctx, first)
	if err != nil || !created || got.State != ceb179.StateReceived {
		t.Fatalf("first: %+v %v %v", got, created, err)
	}
	again := first
	again.OrderNo, again.ReceivedAt = "O2", at.Add(time.Second)
	got, created, err = e.store.CreateRequest(ctx, again)
	if err != nil || created {
		t.Fatalf("repeat: created=%v err=%v", created, err)
	}
	if got.OrderNo != "O1" || !got.ReceivedAt.Equal(at) {
		t.Fatalf("repeat returned %+v, want the first request", got)
	}
	if _, err := e.store.GetRequest(ctx, "NOPE"); !errors.Is(err, ceb179.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if err := e.store.MarkEnqueued(ctx, "NOPE"); !errors.Is(err, ceb179.ErrNotFound) {
		t.Fatalf("mark unknown session: %v", err)
	}
}

func TestSetState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPaymentsEnv(t, 0)
	at := time.UnixMilli(1790000000000)
	if _, _, err := e.store.CreateRequest(ctx, ceb179.Request{SessionID: "S1", OrderNo: "O1", ReceivedAt: at, Deadline: at}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		to      ceb179.State
		from    ceb179.Transition
		wantErr error
	}{
		{"ok from the expected state", ceb179.StateAssembled, ceb179.Assemblable, nil},
		{"fail from a state it is not in", ceb179.StateNoData, ceb179.Assemblable, ceb179.ErrConflict},
		{"fail from no state at all", ceb179.StateFailed, ceb179.Transition{Name: "nothing"}, errors.New("no states")},
		{"ok from another listed state", ceb179.StateFailed, ceb179.Settleable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.store.SetState(ctx, "S1", tt.to, "why", tt.from)
			if tt.wantErr != nil && tt.wantErr.Error() == "no states" {
				if err == nil || !strings.Contains(err.Error(), "no states to start from") {
					t.Fatalf("err = %v, want the transition refused for having no states", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	got, _ := e.store.GetRequest(ctx, "S1")
	if got.State != ceb179.StateFailed || got.Reason != "why" {
		t.Fatalf("state %s reason %q", got.State, got.Reason)
	}
	if err := e.store.SetState(ctx, "NOPE", ceb179.StateFailed, "", ceb179.Settleable); !errors.Is(err, ceb179.ErrConflict) {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestCreatePendingReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPaymentsEnv(t, 0)
	at := time.UnixMilli(1790000000000)
	p := ceb179.Pending{SessionID: "S1", EbpCode: "E", GUID: "G", Head: []byte(`{"a":5.0}`), Lists: []byte(`[]`), ServiceTime: "1", Digest: "d0", Deadline: at, CreatedAt: at}
	tests := []struct {
		name        string
		replay      int
		digest      string
		wantCreated bool
		wantDigest  string
	}{
		{"ok first assembly", 0, "d0", true, "d0"},
		{"ok repeated delivery keeps the first bytes", 0, "d1", false, "d0"},
		{"ok replay writes new bytes", 1, "d2", true, "d2"},
		{"ok older replay changes nothing", 0, "d3", false, "d2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := p
			q.Replay, q.Digest = tt.replay, tt.digest
			got, created, err := e.store.CreatePending(ctx, q)
			if err != nil || created != tt.wantCreated || got.Digest != tt.wantDigest {
				t.Fatalf("got digest %s created %v err %v; want %s %v", got.Digest, created, err, tt.wantDigest, tt.wantCreated)
			}
			stored, err := e.store.GetPending(ctx, "S1")
			if err != nil || stored.Digest != tt.wantDigest || string(stored.Head) != `{"a":5.0}` {
				t.Fatalf("stored %+v %v", stored, err)
			}
		})
	}
}
