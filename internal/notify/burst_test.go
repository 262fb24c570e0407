package notify_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"pgregory.net/rapid"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/eventsource"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/notify/robottest"
	"github.com/ceb179/ceb179/internal/queue"
)

func init() {
	// The pacing property runs in real time: 10 scenarios by default
	// (-rapid.checks on the command line still wins).
	_ = flag.Set("rapid.checks", "10")
	// A failure is written nowhere in the tree.
	_ = flag.Set("rapid.nofailfile", "true")
}

// burstChange is the i-th change of a burst: each its own alarm, so that
// every one can be found in the messages.
func burstChange(i int, at time.Time) notify.Change {
	state, old := notify.StateAlarm, notify.StateOK
	if i%2 == 1 {
		state, old = notify.StateOK, notify.StateAlarm
	}
	return notify.Change{Name: fmt.Sprintf("prod-burst-%02d", i), State: state, OldState: old, At: at,
		Description: "Customs rejected an upload with a message. Runbook: docs/operations.md, upload-rejected.",
		Namespace:   "ceb179", Metric: "Rejected", Statistic: "Sum", Comparison: "GreaterThanThreshold", Period: 60}
}

// TestBurstMergedWithinRate: 50 alarm changes within "10 s" reach a
// DingTalk robot within that "minute", as at most 20 messages in any
// "minute", none lost. It runs
// the real mechanism on a compressed clock (a minute of 6 s, both at the
// robot and in the notifier): the changes go through the notify queue of
// the template on the emulator, an event source feeds them to Handle with
// notify.MaxConcurrency invocations at once (the template's
// MaximumConcurrency), and each invocation paces itself.
func TestBurstMergedWithinRate(t *testing.T) {
	t.Parallel()
	const minute = 6 * time.Second
	env := awstest.New(t)
	ding := robottest.New(t, robottest.DingTalk, robottest.WithSecret("SECburst"), robottest.WithMinute(minute))
	rec := metrics.New("notify", nil)
	n := notify.New(configOf(t, notify.RobotConfig{Name: "ding", Type: notify.DingTalk, Webhook: ding.URL, Secret: ding.Secret}),
		notify.WithMinute(minute), notify.WithMetrics(rec))
	q := queue.New(env.SQS, env.Queue("NotifyQueue"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := &eventsource.Poller{Queue: q, ARN: env.Stack.QueueARNs["NotifyQueue"], Region: env.Region, Handler: n.Handle,
		BatchSize: 10, ReportBatchItemFailures: true, Wait: time.Second, Concurrency: notify.MaxConcurrency, Timeout: time.Minute,
		Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	const changes = 50
	start := time.Now()
	for i := range changes {
		if err := q.Send(ctx, notify.Payload(burstChange(i, time.Now()))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(minute / 6 / changes) // 50 within "10 s"
	}
	missing := func() []string {
		var all strings.Builder
		for _, p := range ding.Accepted() {
			all.WriteString(p.Text)
		}
		var out []string
		for i := range changes {
			if name := fmt.Sprintf("prod-burst-%02d", i); !strings.Contains(all.String(), name) {
				out = append(out, name)
			}
		}
		return out
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("changes never reached the robot: %v", m)
	}
	posts := ding.Posts()
	for _, p := range posts {
		if !p.Accepted {
			t.Errorf("robot refused a post: %s", p.Answer)
		}
	}
	if most := ding.MaxInWindow(minute); most > 20 {
		t.Errorf("%d posts within one minute, want at most 20", most)
	}
	if last := posts[len(posts)-1].At; last.Sub(start) > minute {
		t.Errorf("the last change reached the robot %v after the first was raised, want within that minute (%v): the burst was not merged",
			last.Sub(start).Round(time.Millisecond), minute)
	}
	if got := rec.Total(notify.MetricChanges); got != changes {
		t.Errorf("%s = %v, want %d (no change handled twice)", notify.MetricChanges, got, changes)
	}
	t.Logf("50 changes became %d messages, the last %v after the first change; at most %d in a minute (%v here)",
		len(posts), posts[len(posts)-1].At.Sub(start).Round(time.Millisecond), ding.MaxInWindow(minute), minute)
}

// TestPacingProperty: whatever the lanes (up to notify.MaxConcurrency
// invocations at once), the number of invocations in each, their sizes and
// the robot's failures, a robot never receives more posts in a minute
// than its limit, retries included.
func TestPacingProperty(t *testing.T) {
	t.Parallel()
	// A minute of 1 s: the 5% margin (5 ms) stays above loopback jitter,
	// and 2 lanes of 6 to 12 invocations could post up to 24 times, more
	// with retries, if the pacing failed.
	const minute = time.Second
	rapid.Check(t, func(rt *rapid.T) {
		kind := rapid.SampledFrom([]robottest.Kind{robottest.DingTalk, robottest.WeCom}).Draw(rt, "kind")
		r := robottest.New(t, kind, robottest.WithMinute(minute))
		r.FailNext(rapid.IntRange(0, 6).Draw(rt, "failures"), `{"errcode":-1,"errmsg":"system busy"}`)
		n := notify.New(configOf(t, notify.RobotConfig{Name: "r", Type: notify.Kind(kind), Webhook: r.URL}), notify.WithMinute(minute))
		// As many lanes as the template lets run at once, each busy
		// enough to pass the limit together if the pacing failed.
		var wg sync.WaitGroup
		for l := range notify.MaxConcurrency {
			invocations := rapid.IntRange(6, 12).Draw(rt, fmt.Sprintf("invocations%d", l))
			sizes := make([]int, invocations)
			for i := range sizes {
				sizes[i] = rapid.IntRange(1, 10).Draw(rt, fmt.Sprintf("size%d.%d", l, i))
			}
			wg.Go(func() {
				for _, size := range sizes {
					var ev events.SQSEvent
					for i := range size {
						ev.Records = append(ev.Records, record(t, fmt.Sprint(i), burstChange(i, time.Now())))
					}
					_, _ = n.Handle(context.Background(), ev)
				}
			})
		}
		wg.Wait()
		if most, limit := r.MaxInWindow(minute), notify.PerMinute(notify.Kind(kind)); most > limit {
			rt.Fatalf("%d posts within a minute, limit %d", most, limit)
		}
	})
}
