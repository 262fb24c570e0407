package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/ops/opstest"
	"github.com/ceb179/ceb179/internal/queue"
)

// seededDay is the day the tests write; now is the next morning.
const seededDay = "2026-11-24"

var now = time.Date(2026, 11, 25, 9, 0, 0, 0, ceb179.China)

// bed is a requests table with a realistic day in it, shared by the tests
// of this file (seeding takes a few seconds).
type bed struct {
	env    *awstest.Env
	store  *dynamo.Store
	seeded opstest.Seeded
}

var (
	bedOnce sync.Once
	shared  *bed
	bedErr  error
)

func theBed(t *testing.T) *bed {
	t.Helper()
	bedOnce.Do(func() {
		env := awstest.New(t)
		store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
		seeded, err := opstest.SeedDay(context.Background(), store, seededDay, 3000, "S-", 1)
		if err == nil {
			// A quieter day before.
			_, err = opstest.SeedDay(context.Background(), store, "2026-11-22", 200, "P-", 2)
		}
		shared, bedErr = &bed{env: env, store: store, seeded: seeded}, err
	})
	if bedErr != nil {
		t.Fatal(bedErr)
	}
	if shared == nil {
		t.Fatal("the shared test data could not be set up (see the first test's failure)")
	}
	return shared
}

func (b *bed) service(sender ops.Sender) *ops.Service {
	return ops.New(b.store, sender, ops.WithClock(func() time.Time { return now }))
}

func TestSummary(t *testing.T) {
	b := theBed(t)
	start := time.Now()
	d, err := b.service(nil).Summary(context.Background(), seededDay)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary of %d requests in %s", d.Requests, time.Since(start))
	if d.Requests != b.seeded.Total() {
		t.Fatalf("%d requests, want %d", d.Requests, b.seeded.Total())
	}
	for _, o := range ops.Outcomes {
		if d.By[o] != b.seeded.Count(o) {
			t.Errorf("%s: %d, want %d", o, d.By[o], b.seeded.Count(o))
		}
	}
	wantRate := float64(b.seeded.Count(ops.OutcomeOnTime)) / float64(b.seeded.Total())
	if d.OnTimeRate() != wantRate {
		t.Errorf("on-time rate %.4f, want %.4f", d.OnTimeRate(), wantRate)
	}
	for _, e := range d.ByEbpCode {
		if e.EbpCode != "" && e.Requests != b.seeded.ByEbpCode[e.EbpCode] {
			t.Errorf("ebpCode %s: %d requests, want %d", e.EbpCode, e.Requests, b.seeded.ByEbpCode[e.EbpCode])
		}
		if e.EbpCode == "" && e.Requests != b.seeded.Count(ops.OutcomeNoData)+b.seeded.Count(ops.OutcomeInvalid)+b.seeded.Count(ops.OutcomeCapped) {
			t.Errorf("requests never assembled: %d", e.Requests)
		}
	}
	inHist := 0
	for _, bk := range d.Histogram {
		inHist += bk.Count
	}
	if inHist != d.Accepted() || d.P50 <= 0 || d.P50 > 5*time.Second || d.P99 < d.P50 {
		t.Errorf("histogram holds %d of %d accepted; p50 %s p99 %s", inHist, d.Accepted(), d.P50, d.P99)
	}
	wantFailures := d.Requests - d.By[ops.OutcomeOnTime] - d.By[ops.OutcomeInProgress]
	if len(d.Failures) != wantFailures || d.Timeline != nil {
		t.Errorf("%d failures, want %d; timeline %d", len(d.Failures), wantFailures, len(d.Timeline))
	}
}

func TestStatus(t *testing.T) {
	b := theBed(t)
	tests := []struct {
		name     string
		day      string
		days     int
		wantReqs []int
	}{
		{"ok seven days from the seeded day", seededDay, 7, []int{3000, 0, 200, 0, 0, 0, 0}},
		{"ok today by default", "", 2, []int{0, 3000}},
		{"fail bad day", "24.11.2026", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := b.service(nil).Status(context.Background(), tt.day, tt.days)
			if tt.wantReqs == nil {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, d := range st.Days {
				got = append(got, d.Requests)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantReqs) {
				t.Fatalf("requests per day %v, want %v", got, tt.wantReqs)
			}
			if len(st.Today.Timeline) != tt.wantReqs[0] {
				t.Errorf("timeline %d points", len(st.Today.Timeline))
			}
		})
	}
}

func TestTrails(t *testing.T) {
	b := theBed(t)
	s := b.service(nil)
	late := b.seeded.Sessions[ops.OutcomeLate][0]
	rejected := b.seeded.Sessions[ops.OutcomeRejected][0]
	noData := b.seeded.Sessions[ops.OutcomeNoData][0]
	capped := b.seeded.Sessions[ops.OutcomeCapped][0]
	tests := []struct {
		name     string
		key      string
		outcome  ops.Outcome
		attempts int
		want     []string
	}{
		{"ok late by sessionID", late, ops.OutcomeLate, 2, []string{"request received", "assembled: ebpCode", "UNCERTAIN", "ACCEPTED", "now ACCEPTED (LATE)"}},
		{"ok rejected by orderNo", b.seeded.Orders[rejected], ops.OutcomeRejected, 1, []string{"REJECTED", "支付企业不一致"}},
		{"ok no data has no upload", noData, ops.OutcomeNoData, 0, []string{"now NO_DATA (NO_DATA): no payment record"}},
		{"ok capped has no upload", capped, ops.OutcomeCapped, 0, []string{"now CAPPED (CAPPED): request 6 for this order today"}},
		{"fail unknown", "NOPE", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trails, err := s.Trails(context.Background(), tt.key)
			if tt.want == nil {
				if !errors.Is(err, ceb179.ErrNotFound) {
					t.Fatalf("err %v, want ceb179.ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(trails) != 1 || trails[0].Outcome != tt.outcome || len(trails[0].Attempts) != tt.attempts {
				t.Fatalf("trails %+v", trails)
			}
			var lines []string
			for _, e := range trails[0].Events {
				lines = append(lines, e.What)
			}
			text := strings.Join(lines, "\n")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("trail lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "c2lnbmF0dXJl") {
				t.Error("trail shows a signValue")
			}
		})
	}
}

func TestReplay(t *testing.T) {
	b := theBed(t)
	q := queue.New(b.env.SQS, b.env.Queue("AssembleQueue"))
	s := b.service(q)
	ctx := context.Background()
	failed := b.seeded.Sessions[ops.OutcomeFailed][0]
	stuck := b.seeded.Sessions[ops.OutcomeStuck][0]
	accepted := b.seeded.Sessions[ops.OutcomeOnTime][0]
	tests := []struct {
		name    string
		req     ops.ReplayRequest
		wantErr error
		replay  int
	}{
		{name: "ok failed", req: ops.ReplayRequest{SessionID: failed, By: "alice", Why: "customs endpoint was down"}, replay: 1},
		{name: "ok stuck", req: ops.ReplayRequest{SessionID: stuck, By: "alice", Why: "sign job lost"}, replay: 1},
		{name: "fail accepted", req: ops.ReplayRequest{SessionID: accepted, By: "alice", Why: "test"}, wantErr: ceb179.ErrRefused},
		{name: "fail in progress after the replay", req: ops.ReplayRequest{SessionID: failed, By: "alice", Why: "again"}, wantErr: ceb179.ErrRefused},
		{name: "ok in progress forced", req: ops.ReplayRequest{SessionID: failed, By: "alice", Why: "again", Force: true}, replay: 2},
		{name: "fail unknown", req: ops.ReplayRequest{SessionID: "NOPE", By: "alice", Why: "x"}, wantErr: ceb179.ErrNotFound},
		{name: "fail no reason", req: ops.ReplayRequest{SessionID: failed, By: "alice"}, wantErr: errors.New("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Replay(ctx, tt.req)
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr.Error() != "" && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Replay != tt.replay || !res.Deadline.Equal(now.Add(ceb179.Window)) {
				t.Fatalf("result %+v", res)
			}
			msgs, err := q.Receive(ctx, 10, time.Second, time.Minute)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("assemble queue: %d messages, %v", len(msgs), err)
			}
			var m ceb179.AssembleMessage
			if err := json.Unmarshal([]byte(msgs[0].Body), &m); err != nil {
				t.Fatal(err)
			}
			if m.SessionID != tt.req.SessionID || m.Replay != tt.replay || m.Deadline != now.Add(ceb179.Window).UnixMilli() {
				t.Errorf("message %+v", m)
			}
			_ = q.Delete(ctx, msgs[0].ReceiptHandle)
			v, err := b.store.GetRequestView(ctx, tt.req.SessionID)
			if err != nil || v.State != ceb179.StateReceived || v.Replays != tt.replay || v.LastReplayWhy != tt.req.Why {
				t.Errorf("request after replay %+v %v", v, err)
			}
		})
	}
}
