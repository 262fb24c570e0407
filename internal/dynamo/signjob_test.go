package dynamo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

func TestClaimSignJob(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	if _, created, err := e.store.CreatePending(ctx, ceb179.Pending{
		SessionID: "s1", EbpCode: "E", GUID: "G", Head: []byte(`{}`), Lists: []byte(`[]`),
		ServiceTime: "1", Digest: "d", Deadline: now.Add(ceb179.Window), CreatedAt: now,
	}); err != nil || !created {
		t.Fatalf("CreatePending: %v %v", created, err)
	}
	lease := 10 * time.Second
	tests := []struct {
		name    string
		id      string
		owner   string
		at      time.Time
		release string // owner releasing before the claim
		want    bool
		wantErr error
	}{
		{name: "ok first claim", id: "s1", owner: "a", at: now, want: true},
		{name: "ok holder again", id: "s1", owner: "a", at: now.Add(time.Second), want: true},
		{name: "fail held by another", id: "s1", owner: "b", at: now.Add(5 * time.Second), want: false},
		{name: "fail release by a non-holder changes nothing", id: "s1", owner: "b", at: now.Add(5 * time.Second), release: "b", want: false},
		{name: "ok lapsed claim taken over", id: "s1", owner: "b", at: now.Add(time.Second + lease + time.Millisecond), want: true},
		{name: "ok released claim", id: "s1", owner: "c", at: now.Add(12 * time.Second), release: "b", want: true},
		{name: "fail no pending upload", id: "nope", owner: "a", at: now, wantErr: ceb179.ErrNotFound},
	}
	for _, tt := range tests {
		if tt.release != "" {
			if err := e.store.ReleaseSignJob(ctx, tt.id, tt.release); err != nil {
				t.Fatalf("%s: release: %v", tt.name, err)
			}
		}
		got, err := e.store.ClaimSignJob(ctx, tt.id, tt.owner, tt.at, lease)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: ClaimSignJob = %v, %v; want %v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	// The pending upload itself is untouched by claims.
	p, err := e.store.GetPending(ctx, "s1")
	if err != nil || p.Digest != "d" || string(p.Head) != "{}" {
		t.Errorf("pending after claims: %+v %v", p, err)
	}
}
