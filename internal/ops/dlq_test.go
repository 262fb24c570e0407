package ops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/queue"
)

func TestDLQ(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	ctx := context.Background()
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	s := ops.New(store, nil)

	dead, err := queue.DeadLettersOf(ctx, queue.New(env.SQS, env.Queue("SignQueue")), "")
	if err != nil {
		t.Fatal(err)
	}
	dlq := ops.DLQ{Name: "sign", Queue: dead}
	// 23 dead sign jobs; the first one's session was assembled again since.
	at := time.Now()
	for i := range 23 {
		id := fmt.Sprintf("dead-%02d", i)
		if _, _, err := store.CreateRequest(ctx, ceb179.Request{SessionID: id, OrderNo: "O" + id, ReceivedAt: at, Deadline: at.Add(ceb179.Window), State: ceb179.StateSigned}); err != nil {
			t.Fatal(err)
		}
		digest := fmt.Sprintf("%064d", i)
		p := ceb179.Pending{SessionID: id, EbpCode: "E", Digest: digest, Deadline: at, CreatedAt: at}
		if i == 0 {
			p.Digest, p.Replay = fmt.Sprintf("%064d", 99), 1
		}
		if _, _, err := store.CreatePending(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := dead.Send(ctx, ceb179.SignJob{SessionID: id, EbpCode: "E", Deadline: at.UnixMilli(), Digest: digest}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		max  int
		want int
	}{
		{"ok list everything", 100, 23},
		{"ok list a few", 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := dlq.List(ctx, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != tt.want {
				t.Fatalf("listed %d, want %d", len(msgs), tt.want)
			}
			if err := s.Annotate(ctx, msgs); err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m.SessionID == "" || m.State != string(ceb179.StateSigned) || m.Digest == "" {
					t.Errorf("message %+v", m)
				}
			}
		})
	}
	// (The emulator counts a released message as in flight until the next receive.)
	if v, f, err := dead.Depth(ctx); err != nil || v+f != 23 {
		t.Fatalf("depth after listing: %d visible, %d in flight, %v", v, f, err)
	}

	res, err := dlq.Redrive(ctx, 100, s.KeepSignJob(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 22 || res.Dropped != 1 || len(res.Messages) != 23 {
		t.Fatalf("redrive moved %d dropped %d of %d, want 22 and 1 of 23", res.Moved, res.Dropped, len(res.Messages))
	}
	for _, m := range res.Messages {
		if stale := m.SessionID == "dead-00"; stale != (m.State != "") {
			t.Errorf("redriven %s with state %q: only the stale job is dropped, with its reason", m.SessionID, m.State)
		}
	}
	src := queue.New(env.SQS, env.Queue("SignQueue"))
	got := 0
	for range 10 {
		msgs, err := src.Receive(ctx, 10, time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		got += len(msgs)
	}
	if got != 22 {
		t.Errorf("source queue got %d, want 22", got)
	}
	if msgs, err := dlq.List(ctx, 100); err != nil || len(msgs) != 0 {
		t.Errorf("dead-letter queue after redrive: %d messages, %v", len(msgs), err)
	}
}
