package eventsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/queue"
)

// recorder is a handler that fails the bodies it is told to, and records
// every delivery.
type recorder struct {
	mu        sync.Mutex
	delivered map[string]int
	fail      func(body string) bool
	err       error
	panicMsg  string
	arn       string
}

func (r *recorder) handle(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		r.delivered[m.Body]++
		r.arn = m.EventSourceARN
		if m.Attributes["ApproximateReceiveCount"] == "" {
			return resp, errors.New("no receive count")
		}
		if r.fail != nil && r.fail(m.Body) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
		if r.fail != nil && r.fail("unknown") {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: "not-in-batch"})
		}
	}
	if r.panicMsg != "" {
		panic(r.panicMsg)
	}
	return resp, r.err
}

func (r *recorder) count(body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delivered[body]
}

func TestPoller(t *testing.T) {
	tests := []struct {
		name           string
		reportFailures bool
		fail           func(string) bool
		err            error
		panicMsg       string
		// wantGone is whether each of the bodies m0..m2 leaves the queue.
		wantGone [3]bool
	}{
		{"ok every message processed", true, nil, nil, "", [3]bool{true, true, true}},
		{"ok one failure reported, the rest deleted", true, func(b string) bool { return b == `"m1"` }, nil, "", [3]bool{true, false, true}},
		{"ok without ReportBatchItemFailures the answer is ignored", false, func(b string) bool { return b == `"m1"` }, nil, "", [3]bool{true, true, true}},
		{"fail unknown identifier keeps the batch", true, func(b string) bool { return b == "unknown" }, nil, "", [3]bool{false, false, false}},
		{"fail handler error keeps the batch", true, nil, errors.New("boom"), "", [3]bool{false, false, false}},
		{"fail handler panic keeps the batch", true, nil, nil, "boom", [3]bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := awstest.New(t)
			q := queue.New(env.SQS, env.Queue("AssembleQueue"))
			for i := range 3 {
				if err := q.Send(context.Background(), fmt.Sprintf("m%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			rec := &recorder{delivered: map[string]int{}, fail: tt.fail, err: tt.err, panicMsg: tt.panicMsg}
			ctx, cancel := context.WithCancel(context.Background())
			p := &Poller{Queue: q, ARN: env.Stack.QueueARNs["AssembleQueue"], Region: env.Region, Handler: rec.handle,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReportBatchItemFailures: tt.reportFailures, Visibility: time.Second, Wait: time.Second, Concurrency: 1}
			done := make(chan error)
			go func() { done <- p.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for rec.count(`"m0"`)+rec.count(`"m1"`)+rec.count(`"m2"`) < 3 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if rec.arn != env.Stack.QueueARNs["AssembleQueue"] {
				t.Errorf("eventSourceARN %q", rec.arn)
			}
			// What the poller kept becomes visible again after its 1 s
			// visibility timeout.
			time.Sleep(1500 * time.Millisecond)
			left := map[string]bool{}
			msgs, err := q.Receive(context.Background(), 10, time.Second, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				left[m.Body] = true
			}
			for i, gone := range tt.wantGone {
				body := fmt.Sprintf(`"m%d"`, i)
				if left[body] == gone {
					t.Errorf("message %s: left on queue = %v, want %v", body, left[body], !gone)
				}
			}
		})
	}
}

// TestPollerDefaultConcurrency checks that by default several batches are
// processed at once, as Lambda's pollers do: a batch that takes long does
// not stop the next messages.
func TestPollerDefaultConcurrency(t *testing.T) {
	env := awstest.New(t)
	q := queue.New(env.SQS, env.Queue("AssembleQueue"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		running int
		most    int
	)
	release := make(chan struct{})
	p := &Poller{Queue: q, BatchSize: 1, Wait: time.Second, Timeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			select {
			case <-release:
			case <-ctx.Done():
			}
			mu.Lock()
			running--
			mu.Unlock()
			return events.SQSEventResponse{}, nil
		}}
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	for i := range DefaultConcurrency {
		if err := q.Send(ctx, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := most
		mu.Unlock()
		if n >= DefaultConcurrency {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(release)
	cancel()
	<-done
	if most < DefaultConcurrency {
		t.Errorf("at most %d batches at once, want %d", most, DefaultConcurrency)
	}
}

// TestPollerFinish stops a poller while its handler works on a batch. With
// Finish the invocation runs to its end on a context that is not
// cancelled and its message is deleted: nothing is left in flight for an
// emulator to forget. Without it the invocation is cancelled and the
// message comes back after its visibility timeout.
func TestPollerFinish(t *testing.T) {
	tests := []struct {
		name      string
		finish    bool
		wantAgain int
	}{
		{"ok finish: the batch is processed and deleted", true, 0},
		{"ok no finish: the batch stays and comes back", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := awstest.New(t)
			q := queue.New(env.SQS, env.Queue("AssembleQueue"))
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			p := &Poller{Queue: q, BatchSize: 1, Wait: time.Second, Timeout: 10 * time.Second, Visibility: time.Second,
				Concurrency: 1, Finish: tt.finish, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Handler: func(hctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
					once.Do(func() { close(started) })
					select {
					case <-release:
						return events.SQSEventResponse{}, nil
					case <-hctx.Done():
						return events.SQSEventResponse{}, hctx.Err()
					}
				}}
			done := make(chan struct{})
			go func() { defer close(done); _ = p.Run(ctx) }()
			if err := q.Send(ctx, "m"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never got the message")
			}
			stop()
			time.Sleep(100 * time.Millisecond) // the stop reaches the handler first
			close(release)
			<-done
			time.Sleep(1500 * time.Millisecond) // past the visibility timeout
			again, err := q.Receive(context.Background(), 10, 0, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != tt.wantAgain {
				t.Errorf("%d messages in the queue after the stop, want %d", len(again), tt.wantAgain)
			}
		})
	}
}
