package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/queue"
)

func TestRoundTrip(t *testing.T) {
	env := awstest.New(t)
	q := queue.New(env.SQS, env.Queue("SignQueue"))
	ctx := context.Background()
	if q.URL() != env.Queue("SignQueue") {
		t.Fatalf("URL %q", q.URL())
	}
	if err := q.Send(ctx, map[string]string{"sessionID": "S1"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(ctx, 50, time.Second, 30*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(msgs))
	}
	m := msgs[0]
	if m.Body != `{"sessionID":"S1"}` || m.ReceiveCount != 1 || m.SentAt.IsZero() || m.MD5OfBody == "" || m.Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("message %+v", m)
	}
	// Hidden while received; back at once when its visibility is cut to zero.
	if again, _ := q.Receive(ctx, 10, time.Second, 30*time.Second); len(again) != 0 {
		t.Fatal("a received message was delivered twice")
	}
	if err := q.ExtendVisibility(ctx, m.ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	msgs, err = q.Receive(ctx, 10, time.Second, 30*time.Second)
	if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
		t.Fatalf("second receive: %v %+v", err, msgs)
	}
	if err := q.Delete(ctx, msgs[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if left, _ := q.Receive(ctx, 10, time.Second, 0); len(left) != 0 {
		t.Fatalf("deleted message came back: %+v", left)
	}
}

func TestSendRefusesWhatIsNotJSON(t *testing.T) {
	env := awstest.New(t)
	q := queue.New(env.SQS, env.Queue("SignQueue"))
	if err := q.Send(context.Background(), func() {}); err == nil {
		t.Fatal("fail: a value JSON cannot encode was sent")
	}
}
