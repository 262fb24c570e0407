package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/notify/robottest"
	"github.com/ceb179/ceb179/internal/queue"
)

// staticConfig is a ConfigSource holding a fixed configuration.
type staticConfig []byte

func (s staticConfig) Read(context.Context) ([]byte, error) { return s, nil }

// configOf renders robots as the JSON a secret holds.
func configOf(tb testing.TB, robots ...notify.RobotConfig) staticConfig {
	tb.Helper()
	b, err := json.Marshal(notify.Config{Robots: robots})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// signDLQDescription is the sign-DLQ alarm's description in template.yaml.
const signDLQDescription = "Sign jobs were never completed and wait in the sign dead-letter queue. Runbook: docs/operations.md, sign-dlq."

// signDLQChange is a change of the sign-DLQ alarm as CloudWatch sends it.
func signDLQChange(state, old string, at time.Time) notify.Change {
	v := 3.0
	return notify.Change{
		Name: "prod-sign-dlq", Description: signDLQDescription, State: state, OldState: old, At: at,
		Reason:    fmt.Sprintf("Threshold Crossed: 1 out of the last 1 datapoints [%v (%s)] was greater than the threshold (0.0).", v, at.Format("02/01/06 15:04:05")),
		Namespace: "AWS/SQS", Metric: "ApproximateNumberOfMessagesVisible", Statistic: "Maximum",
		Dimensions: []string{"QueueName=prod-SignDeadLetterQueue"}, Comparison: "GreaterThanThreshold", Threshold: 0, Period: 60,
	}
}

// record wraps a change as the notify queue delivers it (raw delivery).
func record(tb testing.TB, id string, c notify.Change) events.SQSMessage {
	tb.Helper()
	b, err := json.Marshal(notify.Payload(c))
	if err != nil {
		tb.Fatal(err)
	}
	return events.SQSMessage{MessageId: id, Body: string(b)}
}

// TestSignDLQAlarmThenOK: an ALARM then an OK of the sign-DLQ alarm reach
// each kind of robot as one message each, signed as each vendor documents,
// with the runbook link and the ebpCode of the jobs in the dead-letter
// queue; a robot answering errcode 310000 is tried Attempts times and
// counted, and the others still get theirs. Nothing in the logs holds a
// webhook's token.
func TestSignDLQAlarmThenOK(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	ctx := t.Context()
	dlq := queue.New(env.SQS, env.Queue("SignDeadLetterQueue"))
	for i := range 2 {
		if err := dlq.Send(ctx, ceb179.SignJob{SessionID: fmt.Sprintf("s-%d", i), EbpCode: "46016602EV", Deadline: time.Now().UnixMilli(), Digest: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	ding := robottest.New(t, robottest.DingTalk, robottest.WithSecret("SECding"))
	lark := robottest.New(t, robottest.Feishu, robottest.WithSecret("larksecret"))
	wecom := robottest.New(t, robottest.WeCom)
	broken := robottest.New(t, robottest.DingTalk, robottest.WithSecret("SECbroken"))
	broken.FailNext(100, `{"errcode":310000,"errmsg":"keywords not in content"}`)
	cfg := configOf(t,
		notify.RobotConfig{Name: "ding", Type: notify.DingTalk, Webhook: ding.URL, Secret: ding.Secret},
		notify.RobotConfig{Name: "lark", Type: notify.Feishu, Webhook: lark.URL, Secret: lark.Secret},
		notify.RobotConfig{Name: "wecom", Type: notify.WeCom, Webhook: wecom.URL},
		notify.RobotConfig{Name: "broken", Type: notify.DingTalk, Webhook: broken.URL, Secret: broken.Secret},
	)
	var logs syncBuffer
	rec := metrics.New("notify", nil)
	n := notify.New(cfg, notify.WithSignDeadLetters(dlq), notify.WithDocsBaseURL("https://docs.example/ceb179/docs/"),
		notify.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), notify.WithMetrics(rec), notify.WithMinute(600*time.Millisecond))

	at := time.Now().Add(-time.Minute)
	for i, c := range []notify.Change{signDLQChange(notify.StateAlarm, notify.StateOK, at), signDLQChange(notify.StateOK, notify.StateAlarm, at.Add(30*time.Second))} {
		resp, err := n.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{record(t, fmt.Sprint(i), c)}})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Handle = %+v, %v", resp, err)
		}
	}
	link := "https://docs.example/ceb179/docs/operations.md#sign-dlq"
	for _, r := range []*robottest.Robot{ding, lark, wecom} {
		t.Run(string(r.Kind), func(t *testing.T) {
			got := r.Accepted()
			if len(got) != 2 || len(r.Posts()) != 2 {
				t.Fatalf("%d posts, %d accepted; want one message for the ALARM and one for the OK: %+v", len(r.Posts()), len(got), r.Posts())
			}
			alarm, ok := got[0].Text, got[1].Text
			for _, want := range []string{"prod-sign-dlq", "签名任务进入死信队列", link, "46016602EV（2 个任务）", "`ceb179 dlq list --queue sign`", "OK → ALARM", "最新值：3"} {
				if !strings.Contains(alarm, want) {
					t.Errorf("ALARM message lacks %q:\n%s", want, alarm)
				}
			}
			for _, want := range []string{"prod-sign-dlq", "🟢 恢复", "事件结束：ALARM → OK", link} {
				if !strings.Contains(ok, want) {
					t.Errorf("OK message lacks %q:\n%s", want, ok)
				}
			}
		})
	}
	if posts := broken.Posts(); len(posts) != notify.Attempts*2 {
		t.Errorf("the broken robot got %d posts, want %d (every message tried %d times)", len(posts), notify.Attempts*2, notify.Attempts)
	}
	if got := rec.Total(notify.MetricAttemptFailed); got != float64(notify.Attempts*2) {
		t.Errorf("%s = %v, want %d", notify.MetricAttemptFailed, got, notify.Attempts*2)
	}
	if got, want := rec.Total(notify.MetricFailed), 2.0; got != want {
		t.Errorf("%s = %v, want %v", notify.MetricFailed, got, want)
	}
	if got, want := rec.Total(notify.MetricDelivered), 6.0; got != want {
		t.Errorf("%s = %v, want %v", notify.MetricDelivered, got, want)
	}
	out := logs.String()
	if !strings.Contains(out, "errcode 310000") || !strings.Contains(out, `"robot":"broken"`) {
		t.Errorf("the broken robot's failure is not logged with its name and errcode:\n%s", out)
	}
	for _, r := range []*robottest.Robot{ding, lark, wecom, broken} {
		if strings.Contains(out, r.Token()) || (r.Secret != "" && strings.Contains(out, r.Secret)) {
			t.Errorf("logs hold robot %s's token or secret", r.Kind)
		}
	}
	// The jobs peeked at are still in the queue for the settler.
	if left, err := dlq.Peek(ctx, 10); err != nil || len(left) != 2 {
		t.Errorf("dead-letter queue after the peek holds %d jobs (%v), want 2", len(left), err)
	}
}

// TestSignatures sends through each signing robot with the right secret,
// a wrong one, and a clock an hour and more off: only the first is taken.
func TestSignatures(t *testing.T) {
	t.Parallel()
	for _, kind := range []robottest.Kind{robottest.DingTalk, robottest.Feishu} {
		for _, tc := range []struct {
			name   string
			secret func(r *robottest.Robot) string
			skew   time.Duration
			ok     bool
		}{
			{"ok right secret", func(r *robottest.Robot) string { return r.Secret }, 0, true},
			{"ok clock a minute off", func(r *robottest.Robot) string { return r.Secret }, -time.Minute, true},
			{"fail wrong secret", func(r *robottest.Robot) string { return r.Secret + "x" }, 0, false},
			{"fail stale timestamp", func(r *robottest.Robot) string { return r.Secret }, -61 * time.Minute, false},
			{"fail timestamp from the future", func(r *robottest.Robot) string { return r.Secret }, 61 * time.Minute, false},
			{"fail no signature", func(*robottest.Robot) string { return "" }, 0, false},
		} {
			t.Run(string(kind)+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				r := robottest.New(t, kind, robottest.WithSecret("S3cret-"+string(kind)))
				rec := metrics.New("notify", nil)
				n := notify.New(configOf(t, notify.RobotConfig{Name: "r", Type: notify.Kind(kind), Webhook: r.URL, Secret: tc.secret(r)}),
					notify.WithNow(func() time.Time { return time.Now().Add(tc.skew) }), notify.WithMetrics(rec), notify.WithMinute(60*time.Millisecond))
				res, err := n.Test(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if (res[0].Err == nil) != tc.ok || (len(r.Accepted()) == 1) != tc.ok {
					t.Fatalf("result %v, accepted %d; want accepted %v; answers %+v", res[0].Err, len(r.Accepted()), tc.ok, res[0].Answers)
				}
				want := `"errcode":310000`
				if kind == robottest.Feishu {
					want = `"code":19021`
				}
				if !tc.ok && !strings.Contains(res[0].Answers[0].Body, want) {
					t.Errorf("answer %q, want the vendor's %s", res[0].Answers[0].Body, want)
				}
			})
		}
	}
}

// TestUnreachableRobot: a robot that cannot be reached is tried, counted
// and logged by name, and neither its error nor the log holds its token.
func TestUnreachableRobot(t *testing.T) {
	t.Parallel()
	const token = "access_token=SECRETTOKEN42"
	var logs syncBuffer
	rec := metrics.New("notify", nil)
	n := notify.New(configOf(t, notify.RobotConfig{Name: "gone", Type: notify.DingTalk, Webhook: "http://127.0.0.1:9/robot/send?" + token}),
		notify.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), notify.WithMetrics(rec), notify.WithMinute(60*time.Millisecond))
	res := n.Send(t.Context(), notify.Config{Robots: []notify.RobotConfig{{Name: "gone", Type: notify.DingTalk, Webhook: "http://127.0.0.1:9/robot/send?" + token}}},
		[]notify.Change{signDLQChange(notify.StateAlarm, notify.StateOK, time.Now())})
	if len(res) != 1 || res[0].Err == nil || strings.Contains(res[0].Err.Error(), "SECRETTOKEN42") {
		t.Fatalf("result %+v", res)
	}
	if rec.Total(notify.MetricAttemptFailed) != notify.Attempts || rec.Total(notify.MetricFailed) != 1 {
		t.Errorf("AttemptFailed %v Failed %v", rec.Total(notify.MetricAttemptFailed), rec.Total(notify.MetricFailed))
	}
	if out := logs.String(); strings.Contains(out, "SECRETTOKEN42") || !strings.Contains(out, `"robot":"gone"`) {
		t.Errorf("log:\n%s", out)
	}
}
