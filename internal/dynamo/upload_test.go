package dynamo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
)

// newStore returns a store over a fresh set of emulated tables.
func newStore(tb testing.TB) *dynamo.Store {
	tb.Helper()
	env := awstest.New(tb)
	return dynamo.New(env.DynamoDB, dynamo.Tables{
		Requests: env.Table("RequestsTable"),
		Payments: env.Table("PaymentsTable"),
	}, 0)
}

// putRequest records a request in state st.
func putRequest(tb testing.TB, s *dynamo.Store, id string, st ceb179.State, at time.Time) {
	tb.Helper()
	_, created, err := s.CreateRequest(context.Background(), ceb179.Request{
		SessionID: id, OrderNo: "O-" + id, ReceivedAt: at, Deadline: at.Add(ceb179.Window), State: st,
	})
	if err != nil || !created {
		tb.Fatalf("CreateRequest(%s) = %v, %v", id, created, err)
	}
}

func TestClaimUpload(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	putRequest(t, s, "assembled", ceb179.StateAssembled, now)
	putRequest(t, s, "received", ceb179.StateReceived, now)
	putRequest(t, s, "accepted", ceb179.StateAccepted, now)

	tests := []struct {
		name      string
		id        string
		owner     string
		now       time.Time
		wantErr   error
		state     ceb179.State
		takenOver bool
	}{
		{name: "ok first claim", id: "assembled", owner: "a", now: now, state: ceb179.StateSigned},
		{name: "fail lease held", id: "assembled", owner: "b", now: now.Add(time.Second), wantErr: ceb179.ErrClaimed, state: ceb179.StateSigned},
		{name: "ok lease expired", id: "assembled", owner: "c", now: now.Add(2 * time.Minute), state: ceb179.StateSigned, takenOver: true},
		// Assemble sends the sign job just before it records ASSEMBLED.
		{name: "ok assembled but not yet marked", id: "received", owner: "a", now: now, state: ceb179.StateSigned},
		{name: "fail claimed once marked", id: "received", owner: "b", now: now.Add(time.Second), wantErr: ceb179.ErrClaimed, state: ceb179.StateSigned},
		{name: "fail final", id: "accepted", owner: "a", now: now, wantErr: ceb179.ErrClaimed, state: ceb179.StateAccepted},
		{name: "fail unknown", id: "nope", owner: "a", now: now, wantErr: ceb179.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.ClaimUpload(ctx, tt.id, tt.owner, tt.now, tt.now.Add(time.Minute))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ClaimUpload err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("ClaimUpload: %v", err)
			} else if c.Owner != tt.owner || !c.LeaseUntil.Equal(tt.now.Add(time.Minute)) || c.TakenOver != tt.takenOver {
				t.Errorf("claim = %+v, want owner %s until %v, taken over %v", c, tt.owner, tt.now.Add(time.Minute), tt.takenOver)
			}
			if c.Request.State != tt.state {
				t.Errorf("state = %s, want %s", c.Request.State, tt.state)
			}
		})
	}

	// The lease is c's now: a stale owner cannot finish, c can.
	if err := s.FinishUpload(ctx, "assembled", "a", ceb179.StateAccepted, "late", time.Time{}); !errors.Is(err, ceb179.ErrLeaseLost) {
		t.Fatalf("FinishUpload by a stale owner = %v, want ceb179.ErrLeaseLost", err)
	}
	at := now.Add(2 * time.Minute)
	if err := s.ReleaseUpload(ctx, "assembled", "c", "customs did not answer", at); err != nil {
		t.Fatalf("ReleaseUpload: %v", err)
	}
	c, err := s.ClaimUpload(ctx, "assembled", "d", at, at.Add(time.Minute))
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if !c.LastAttemptAt.Equal(at) || c.TakenOver {
		t.Errorf("claim after release = %+v, want LastAttemptAt %v and not taken over", c, at)
	}
	if err := s.FinishUpload(ctx, "assembled", "d", ceb179.StateAccepted, "上传成功", at); err != nil {
		t.Fatalf("FinishUpload: %v", err)
	}
	r, err := s.GetRequest(ctx, "assembled")
	if err != nil || r.State != ceb179.StateAccepted || r.Reason != "上传成功" {
		t.Fatalf("GetRequest = %+v, %v; want ACCEPTED", r, err)
	}
	if _, err := s.ClaimUpload(ctx, "assembled", "e", at.Add(time.Hour), at.Add(2*time.Hour)); !errors.Is(err, ceb179.ErrClaimed) {
		t.Fatalf("claim of an accepted session = %v, want ceb179.ErrClaimed", err)
	}
}

func TestClaimUploadConcurrent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	now := time.UnixMilli(1_700_000_000_000)
	putRequest(t, s, "race", ceb179.StateAssembled, now)
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := string(rune('a' + i))
			if _, err := s.ClaimUpload(context.Background(), "race", owner, now, now.Add(time.Minute)); err == nil {
				wins <- owner
			} else if !errors.Is(err, ceb179.ErrClaimed) {
				t.Errorf("claim %s: %v", owner, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if got := len(wins); got != 1 {
		t.Fatalf("%d concurrent claims won, want exactly 1", got)
	}
}

func TestNoteUpload(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	putRequest(t, s, "open", ceb179.StateAssembled, now)
	putRequest(t, s, "done", ceb179.StateAccepted, now)
	for _, id := range []string{"open", "done", "unknown"} {
		if err := s.NoteUpload(ctx, id, "signature refused"); err != nil {
			t.Fatalf("NoteUpload(%s): %v", id, err)
		}
	}
	if r, _ := s.GetRequest(ctx, "open"); r.Reason != "signature refused" || r.State != ceb179.StateAssembled {
		t.Errorf("open = %+v, want the reason noted and the state kept", r)
	}
	if r, _ := s.GetRequest(ctx, "done"); r.Reason != "" {
		t.Errorf("done = %+v, want no reason on a final session", r)
	}
}

func TestAttempts(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	at := time.UnixMilli(1_700_000_000_123)
	want := []ceb179.Attempt{
		{SessionID: "s", At: at, N: 1, Outcome: ceb179.OutcomeUncertain, Error: "timeout", Latency: 10 * time.Second,
			Digest: "d", BodyDigest: "b", CertNo: "01691f7f", SignValue: "ab+/", Owner: "o"},
		{SessionID: "s", At: at.Add(time.Second), N: 2, Outcome: ceb179.OutcomeAccepted, HTTPStatus: 200, Code: "10000",
			Message: "上传成功", Latency: 120 * time.Millisecond, Digest: "d", BodyDigest: "b", CertNo: "01691f7f", SignValue: "ab+/", Owner: "o"},
	}
	for i := len(want) - 1; i >= 0; i-- {
		if err := s.PutAttempt(ctx, want[i]); err != nil {
			t.Fatalf("PutAttempt: %v", err)
		}
	}
	if err := s.PutAttempt(ctx, want[0]); err != nil {
		t.Errorf("PutAttempt of the same attempt again (a retried write): %v", err)
	}
	other := want[0]
	other.Owner, other.Outcome = "another", ceb179.OutcomeAccepted
	if err := s.PutAttempt(ctx, other); err == nil {
		t.Errorf("another attempt under the same key was written over the first")
	}
	got, err := s.ListAttempts(ctx, "s")
	if err != nil {
		t.Fatalf("ListAttempts: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListAttempts = %d attempts, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].At.Equal(want[i].At) {
			t.Errorf("attempt %d at %v, want %v", i, got[i].At, want[i].At)
		}
		got[i].At = want[i].At
		if got[i] != want[i] {
			t.Errorf("attempt %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if sk := dynamo.AttemptSK(time.UnixMilli(5), 3); sk != "ATTEMPT#0000000000005#3" {
		t.Errorf("AttemptSK = %s", sk)
	}
}

func TestCertificates(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	c := ceb179.Certificate{EbpCode: "EBP1", CertNo: "01691f7f", PEM: []byte("-----BEGIN CERTIFICATE-----\n..."),
		NotAfter: time.UnixMilli(1_900_000_000_000), RegisteredAt: time.UnixMilli(1_700_000_000_000)}
	if err := s.PutCertificate(ctx, c); err != nil {
		t.Fatalf("PutCertificate: %v", err)
	}
	got, err := s.GetCertificate(ctx, "EBP1", "01691f7f")
	if err != nil || string(got.PEM) != string(c.PEM) || got.EbpCode != "EBP1" || !got.NotAfter.Equal(c.NotAfter) {
		t.Fatalf("GetCertificate = %+v, %v", got, err)
	}
	if _, err := s.GetCertificate(ctx, "EBP2", "01691f7f"); !errors.Is(err, ceb179.ErrNotFound) {
		t.Errorf("certificate of another ebpCode: err = %v, want ceb179.ErrNotFound", err)
	}
	list, err := s.ListCertificates(ctx, "EBP1")
	if err != nil || len(list) != 1 || list[0].CertNo != "01691f7f" {
		t.Errorf("ListCertificates = %+v, %v", list, err)
	}
	if err := s.PutCertificate(ctx, ceb179.Certificate{EbpCode: "EBP1"}); err == nil {
		t.Errorf("PutCertificate without certNo succeeded")
	}
}

// TestClaimAfterReplay: a replay resets the request to RECEIVED before its
// new upload is assembled, so an old sign job must not claim it then.
func TestClaimAfterReplay(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	putRequest(t, s, "replayed", ceb179.StateFailed, now)
	if _, err := s.BeginReplay(ctx, ceb179.Replay{SessionID: "replayed", By: "ops", Why: "test", At: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimUpload(ctx, "replayed", "old-job", now.Add(time.Hour), now.Add(time.Hour+time.Minute))
	if !errors.Is(err, ceb179.ErrClaimed) || c.Request.State != ceb179.StateReceived {
		t.Fatalf("claim after replay reset: state %s, err %v; want refused", c.Request.State, err)
	}
	if err := s.SetState(ctx, "replayed", ceb179.StateAssembled, "", ceb179.Assemblable); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimUpload(ctx, "replayed", "new-job", now.Add(time.Hour), now.Add(time.Hour+time.Minute)); err != nil {
		t.Fatalf("claim once the replay is assembled: %v", err)
	}
}
