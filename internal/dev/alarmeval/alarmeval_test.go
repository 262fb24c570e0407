package alarmeval_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/alarmeval"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/upload"
)

// raised collects the changes an Evaluator raises.
type raised struct {
	mu sync.Mutex
	cs []notify.Change
}

func (r *raised) raise(_ context.Context, c notify.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cs = append(r.cs, c)
	return nil
}

func (r *raised) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.cs {
		out = append(out, c.Name+" "+c.State)
	}
	return out
}

// TestEvaluate evaluates the template's alarms, resolved for a stack on
// the emulator, over the lines a metrics.Recorder writes, the heartbeat
// and a queue's depth, step by step in time.
func TestEvaluate(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	alarms, skipped, err := alarmeval.Load(env.Stack)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"IngestErrorAnswerAlarm", "FrontDoorRateRuleAlarm", "UploadFunctionErrorsAlarm"} {
		if !slices.Contains(skipped, id) {
			t.Errorf("%s is not listed as skipped: %v", id, skipped)
		}
	}
	prefix := env.Stack.Prefix
	m := alarmeval.NewMetrics()
	dlq := queue.New(env.SQS, env.Queue("SignDeadLetterQueue"))
	dlqName, _ := env.Stack.GetAtt("SignDeadLetterQueue", "QueueName")
	var r raised
	ev := &alarmeval.Evaluator{Alarms: alarms, Metrics: m, Queues: map[string]alarmeval.Depth{dlqName: dlq}, Raise: r.raise}
	ctx := t.Context()
	hb := func(b bridge.Beat) {
		if err := m.PutHeartbeat(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	hb(bridge.Beat{HealthySigners: 1})
	now := time.Now()
	ev.Evaluate(ctx, now.Add(time.Millisecond))
	if got := r.names(); len(got) != 0 {
		t.Fatalf("a healthy start raised %v", got)
	}
	// A late upload, written as the upload function writes it.
	metrics.New("upload", m).Add(upload.MetricLate, 1)
	hb(bridge.Beat{HealthySigners: 0, PINRefused: 1})
	if err := dlq.Send(ctx, map[string]string{"sessionID": "s"}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(ctx, time.Now().Add(time.Millisecond))
	want := []string{prefix + "sign-dlq ALARM", prefix + "upload-late ALARM", prefix + "bridge-pin-refused ALARM"}
	if got := r.names(); !sameSet(got, want) {
		t.Fatalf("raised %v, want %v", got, want)
	}
	// Two minutes on: the late upload is old news (no OK action), the
	// refused PIN still stands while the heartbeat says so, and the
	// heartbeat alarm needs five silent minutes.
	msgs, err := dlq.Receive(ctx, 1, time.Second, time.Minute)
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if err := dlq.Delete(ctx, msgs[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(ctx, time.Now().Add(2*time.Minute))
	want = append(want, prefix+"sign-dlq OK")
	if got := r.names(); !sameSet(got, want) {
		t.Fatalf("raised %v, want %v", got, want)
	}
	ev.Evaluate(ctx, time.Now().Add(6*time.Minute))
	want = append(want, prefix+"bridge-heartbeat ALARM")
	if got := r.names(); !sameSet(got, want) {
		t.Fatalf("after six silent minutes raised %v, want %v", got, want)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
