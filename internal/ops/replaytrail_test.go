package ops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
)

// TestTrailAfterReplay: after a replay the trail keeps the first assembly
// next to the replay's, numbers the attempts of both across the session,
// and the first assembly's bytes are kept (its attempts can be rebuilt).
func TestTrailAfterReplay(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	id := "REPLAYED-1"
	if _, _, err := store.CreateRequest(ctx, ceb179.Request{SessionID: id, OrderNo: "ORD-R", ReceivedAt: t0, Deadline: t0.Add(ceb179.Window), State: ceb179.StateReceived}); err != nil {
		t.Fatal(err)
	}
	first := ceb179.Pending{SessionID: id, EbpCode: "EBP1", GUID: "G", Head: []byte(`{"a":1}`), Lists: []byte(`[]`), ServiceTime: "1",
		Digest: "aaaaaaaaaaaaaaaa", Deadline: t0.Add(ceb179.Window), CreatedAt: t0.Add(time.Second)}
	if _, _, err := store.CreatePending(ctx, first); err != nil {
		t.Fatal(err)
	}
	attempt := func(at time.Time, digest string) {
		a := ceb179.Attempt{SessionID: id, At: at, N: 1, Outcome: ceb179.OutcomeUncertain, Error: "timeout", Digest: digest, Owner: "o"}
		if err := store.PutAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	attempt(t0.Add(2*time.Second), first.Digest)
	if _, err := store.BeginReplay(ctx, ceb179.Replay{SessionID: id, By: "alice", Why: "test", At: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Replay, second.ServiceTime, second.Digest, second.CreatedAt = 1, "2", "bbbbbbbbbbbbbbbb", t0.Add(time.Hour+time.Second)
	if _, created, err := store.CreatePending(ctx, second); err != nil || !created {
		t.Fatalf("replay pending: %v %v", created, err)
	}
	attempt(t0.Add(time.Hour+2*time.Second), second.Digest)

	tr, err := ops.New(store, nil).Trail(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range tr.Events {
		lines = append(lines, e.What)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"assembled: ebpCode EBP1, guid G, upload serviceTime 1", "assembled again for replay 1: ebpCode EBP1, guid G, upload serviceTime 2",
		"upload attempt 1 (certNo , digest aaaaaaaaaaaa…)", "upload attempt 2 (certNo , digest bbbbbbbbbbbb…)"} {
		if !strings.Contains(all, want) {
			t.Errorf("trail lacks %q:\n%s", want, all)
		}
	}
	earlier, err := store.EarlierPendings(ctx, id)
	if err != nil || len(earlier) != 1 || string(earlier[0].Head) != `{"a":1}` || earlier[0].Digest != first.Digest {
		t.Errorf("earlier assemblies %+v %v, want the first kept whole", earlier, err)
	}
	// A repeated delivery of the replay keeps one copy.
	if _, _, err := store.CreatePending(ctx, second); err != nil {
		t.Fatal(err)
	}
	if earlier, _ := store.EarlierPendings(ctx, id); len(earlier) != 1 {
		t.Errorf("%d earlier assemblies after a repeated delivery", len(earlier))
	}
}
