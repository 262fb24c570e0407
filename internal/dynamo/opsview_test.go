package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

func TestOperatorQueries(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	// 2026-11-24 10:00 China time, and one request just after midnight China time.
	day := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 250 {
		id := fmt.Sprintf("day-%03d", i)
		ids = append(ids, id)
		putRequest(t, s, id, ceb179.StateAssembled, day.Add(time.Duration(i)*time.Second))
		if i%2 == 0 {
			if _, _, err := s.CreatePending(ctx, ceb179.Pending{SessionID: id, EbpCode: fmt.Sprintf("EBP%d", i%3), Deadline: day, CreatedAt: day}); err != nil {
				t.Fatal(err)
			}
		}
	}
	putRequest(t, s, "next-day", ceb179.StateReceived, time.Date(2026, 11, 24, 16, 0, 1, 0, time.UTC))

	var got []string
	if err := s.RequestsOfDay(ctx, "2026-11-24", func(v ceb179.RequestView) error {
		got = append(got, v.SessionID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || got[0] != "day-000" || got[249] != "day-249" {
		t.Fatalf("RequestsOfDay: %d requests (%v...)", len(got), got[:min(3, len(got))])
	}
	codes, err := s.EbpCodes(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 125 || codes["day-004"] != "EBP1" || codes["day-001"] != "" {
		t.Fatalf("EbpCodes: %d codes, day-004 %q", len(codes), codes["day-004"])
	}
	byOrder, err := s.RequestsOfOrder(ctx, "O-day-007")
	if err != nil || len(byOrder) != 1 || byOrder[0].SessionID != "day-007" {
		t.Fatalf("RequestsOfOrder = %+v, %v", byOrder, err)
	}
}

func TestBeginReplay(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	for _, st := range []ceb179.State{ceb179.StateFailed, ceb179.StateAccepted, ceb179.StateNoData} {
		putRequest(t, s, string(st), st, now)
	}
	putRequest(t, s, "held", ceb179.StateAssembled, now)
	if _, err := s.ClaimUpload(ctx, "held", "owner", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"lapsed", "stuck"} {
		putRequest(t, s, id, ceb179.StateAssembled, now)
		if _, err := s.ClaimUpload(ctx, id, "owner", now, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	putRequest(t, s, "waiting", ceb179.StateAssembled, now)
	tests := []struct {
		name    string
		id      string
		force   bool
		late    time.Duration // after the deadline (10 s after the request when zero)
		wantErr error
		replays int
	}{
		{name: "ok failed", id: "FAILED", replays: 1},
		{name: "ok failed again", id: "FAILED", replays: 2},
		{name: "ok no data", id: "NO_DATA", replays: 1},
		{name: "fail accepted", id: "ACCEPTED", wantErr: ceb179.ErrRefused},
		{name: "ok accepted forced", id: "ACCEPTED", force: true, replays: 1},
		{name: "fail live upload lease", id: "held", wantErr: ceb179.ErrRefused},
		{name: "fail lapsed upload lease, within its time", id: "lapsed", wantErr: ceb179.ErrRefused},
		{name: "ok lapsed upload lease, forced", id: "lapsed", force: true, replays: 1},
		{name: "fail lapsed upload lease, past due but in the late retries", id: "stuck", late: ceb179.StuckAfter, wantErr: ceb179.ErrRefused},
		{name: "ok lapsed upload lease, past the late retries", id: "stuck", late: ceb179.StuckAfter + time.Second, replays: 1},
		{name: "fail assembled within its time", id: "waiting", wantErr: ceb179.ErrRefused},
		{name: "ok assembled past its time", id: "waiting", late: time.Millisecond, replays: 1},
		{name: "fail unknown", id: "nope", wantErr: ceb179.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now.Add(10 * time.Second)
			if tt.late > 0 {
				at = now.Add(ceb179.Window + tt.late)
			}
			v, err := s.BeginReplay(ctx, ceb179.Replay{SessionID: tt.id, By: "alice", Why: "customs asked", At: at, Force: tt.force})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.State != ceb179.StateReceived || v.Replays != tt.replays || v.LastReplayBy != "alice" || !v.LastReplayAt.Equal(at) || v.LeaseOwner != "" {
				t.Fatalf("after replay: %+v", v)
			}
			// The upload can claim the session once assemble has run again.
			if err := s.SetState(ctx, tt.id, ceb179.StateAssembled, "", ceb179.Assemblable); err != nil {
				t.Fatal(err)
			}
			c, err := s.ClaimUpload(ctx, tt.id, "new", at, at.Add(time.Minute))
			if err != nil || c.TakenOver {
				t.Fatalf("claim after replay: %+v %v", c, err)
			}
			if err := s.FinishUpload(ctx, tt.id, "new", ceb179.StateFailed, "again", at); err != nil {
				t.Fatal(err)
			}
		})
	}
}
