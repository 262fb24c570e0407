package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/queue"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	env := awstest.New(t)
	q := queue.New(env.SQS, env.Queue("SignQueue"))
	if err := q.Send(context.Background(), func() {}); err == nil {
		t.Fatal("fail: a value JSON cannot encode was sent")
	}
}

// TestChangeVisibilities changes the visibility of 25 held messages in
// batches of ten: all come back at once, and a failed entry is reported.
func TestChangeVisibilities(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	q := queue.New(env.SQS, env.Queue("SignQueue"))
	ctx := t.Context()
	for i := range 25 {
		if err := q.Send(ctx, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	var receipts []string
	for len(receipts) < 25 {
		msgs, err := q.Receive(ctx, 10, time.Second, time.Hour)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("received %d of 25: %v", len(receipts), err)
		}
		for _, m := range msgs {
			receipts = append(receipts, m.ReceiptHandle)
		}
	}
	if err := q.ChangeVisibilities(ctx, receipts, 0); err != nil {
		t.Fatal(err)
	}
	if back := drain(t, q, time.Hour); back != 25 {
		t.Fatalf("%d of 25 back", back)
	}
	if err := q.ChangeVisibilities(ctx, append(receipts[:3:3], "not-a-receipt"), 0); err == nil {
		t.Error("fail: a failed entry was not reported")
	}
}

// TestDepth counts waiting and received messages.
func TestDepth(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	q := queue.New(env.SQS, env.Queue("SignQueue"))
	for i := range 3 {
		if err := q.Send(t.Context(), map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Receive(t.Context(), 1, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	waiting, inFlight, err := q.Depth(t.Context())
	if err != nil || waiting != 2 || inFlight != 1 {
		t.Errorf("depth = %d waiting, %d in flight, %v; want 2, 1", waiting, inFlight, err)
	}
}

// drain receives every message it can, hiding each for hide, and returns
// how many it got.
func drain(t *testing.T, q *queue.Queue, hide time.Duration) int {
	t.Helper()
	got := 0
	for {
		msgs, err := q.Receive(t.Context(), 10, time.Second, hide)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return got
		}
		got += len(msgs)
	}
}

// TestDeadLetters finds the sign queue's dead-letter queue through its
// redrive policy, lists it without losing a message, and redrives it:
// kept messages reach the source queue, refused ones are deleted, and a
// redrive whose sends fail loses nothing and hides nothing.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	ctx := t.Context()
	source := queue.New(env.SQS, env.Queue("SignQueue"))
	dead, err := queue.DeadLettersOf(ctx, source, "")
	if err != nil {
		t.Fatal(err)
	}
	if dead.URL() != env.Queue("SignDeadLetterQueue") || dead.Source() != source.URL() {
		t.Fatalf("resolved %s for %s, want %s", dead.URL(), dead.Source(), env.Queue("SignDeadLetterQueue"))
	}
	if _, err := queue.DeadLettersOf(ctx, dead.Queue, ""); !errors.Is(err, ceb179.ErrNotFound) {
		t.Fatalf("fail: the dead-letter queue of a queue without a redrive policy: %v, want not found", err)
	}
	for i := range 23 {
		if err := dead.Send(ctx, map[string]string{"sessionID": fmt.Sprintf("D%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range []struct {
		name      string
		max, want int
	}{{"ok peek everything", 100, 23}, {"ok peek again at once: nothing hidden", 100, 23}, {"ok peek a few", 5, 5}, {"ok peek everything after a few", 100, 23}} {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := dead.Peek(ctx, tt.max)
			if err != nil || len(msgs) != tt.want {
				t.Fatalf("peeked %d, want %d (%v)", len(msgs), tt.want, err)
			}
		})
	}

	// Sends to a queue that does not exist fail: the redrive stops at the
	// first, moves nothing, deletes nothing and hides nothing.
	gone := queue.New(env.SQS, source.URL()+"-gone")
	broken, err := queue.DeadLettersOf(ctx, gone, dead.URL())
	if err != nil {
		t.Fatal(err)
	}
	moved, dropped, err := broken.Redrive(ctx, 100, nil)
	if !errors.Is(err, ceb179.ErrNotFound) || len(moved)+len(dropped) != 0 {
		t.Fatalf("fail: redrive to a missing queue: moved %d dropped %d, %v", len(moved), len(dropped), err)
	}
	if msgs, err := dead.Peek(ctx, 100); err != nil || len(msgs) != 23 {
		t.Fatalf("fail: after a failed redrive %d of 23 are visible (%v)", len(msgs), err)
	}

	moved, dropped, err = dead.Redrive(ctx, 100, func(m queue.Message) bool { return !strings.Contains(m.Body, `"D00"`) })
	if err != nil || len(moved) != 22 || len(dropped) != 1 || !strings.Contains(dropped[0].Body, `"D00"`) {
		t.Fatalf("redrive moved %d dropped %d (%v), want 22 and D00", len(moved), len(dropped), err)
	}
	if got := drain(t, source, time.Minute); got != 22 {
		t.Errorf("source queue got %d, want 22", got)
	}
	if msgs, err := dead.Peek(ctx, 100); err != nil || len(msgs) != 0 {
		t.Errorf("dead-letter queue after redrive: %d messages, %v", len(msgs), err)
	}
}

// TestErrorKinds maps SQS's errors to the domain's kinds: the emulator's
// answer for a queue that does not exist, and, from a server speaking
// SQS's JSON protocol, what the emulator cannot be made to say.
func TestErrorKinds(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	missing := queue.New(env.SQS, env.Queue("SignQueue")+"-missing")
	if err := missing.Send(t.Context(), "x"); !errors.Is(err, ceb179.ErrNotFound) {
		t.Errorf("fail: send to a queue that does not exist: %v, want not found", err)
	}
	if _, _, err := missing.Depth(t.Context()); !errors.Is(err, ceb179.ErrNotFound) {
		t.Errorf("fail: depth of a queue that does not exist: %v, want not found", err)
	}

	tests := []struct {
		name              string
		status            int
		errType, queryErr string
		want              ceb179.Kind
	}{
		{"ok queue does not exist", 400, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue;Sender", ceb179.ErrNotFound},
		{"ok invalid receipt", 400, "com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid;Sender", ceb179.ErrNotFound},
		{"ok throttled", 400, "com.amazonaws.sqs#RequestThrottled", "RequestThrottled;Sender", ceb179.ErrUnavailable},
		{"ok generic throttling", 400, "ThrottlingException", "", ceb179.ErrUnavailable},
		{"ok kms throttled", 400, "com.amazonaws.sqs#KmsThrottled", "KmsThrottled;Sender", ceb179.ErrUnavailable},
		{"ok server fault", 500, "com.amazonaws.sqs#InternalError", "", ceb179.ErrUnavailable},
		{"ok unknown server fault", 503, "SomethingNew", "", ceb179.ErrUnavailable},
		{"fail access denied keeps no kind", 400, "AccessDeniedException", "", ""},
		{"fail invalid contents keeps no kind", 400, "com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents;Sender", ""},
		{"fail unknown client error keeps no kind", 400, "SomethingNew", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				if tt.queryErr != "" {
					w.Header().Set("x-amzn-query-error", tt.queryErr)
				}
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"__type":%q,"message":"refused by the test server"}`, tt.errType)
			}))
			defer srv.Close()
			q := queue.New(rawClient(srv.URL), srv.URL+"/000000000000/q")
			for _, call := range []func() error{
				func() error { return q.Send(t.Context(), "x") },
				func() error { _, err := q.Receive(t.Context(), 1, 0, time.Second); return err },
				func() error { return q.Delete(t.Context(), "r") },
				func() error { return q.ChangeVisibilities(t.Context(), []string{"r"}, 0) },
				func() error { _, _, err := q.Depth(t.Context()); return err },
			} {
				err := call()
				if err == nil {
					t.Fatal("no error")
				}
				if got := ceb179.KindOf(err); got != tt.want {
					t.Errorf("%v: kind %q, want %q", err, got, tt.want)
				}
				var api smithy.APIError
				if !errors.As(err, &api) {
					t.Errorf("%v: the SDK's error is not kept", err)
				}
			}
		})
	}

	t.Run("ok nothing listens", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		err := queue.New(rawClient(url), url+"/000000000000/q").Send(t.Context(), "x")
		if !errors.Is(err, ceb179.ErrUnavailable) {
			t.Errorf("send with nothing listening: %v, want unavailable", err)
		}
	})
}

// rawClient is an SQS client for endpoint that does not retry, so that
// each call shows the first answer's error.
func rawClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:      aws.NopRetryer{},
	})
}
