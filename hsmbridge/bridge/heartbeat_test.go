package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/signer"
)

func TestHeartbeatInterval(t *testing.T) {
	t.Parallel()
	const head = "queueURL: https://sqs.example/q\nuploadFunction: upload\nsigners:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n"
	for _, tc := range []struct {
		name    string
		line    string
		want    time.Duration
		wantErr string
	}{
		{"ok default every minute", "", time.Minute, ""},
		{"ok off", "heartbeat: \"off\"\n", 0, ""},
		{"ok thirty seconds", "heartbeat: 30s\n", 30 * time.Second, ""},
		{"fail too often", "heartbeat: 2s\n", 0, "between 10s and 1m"},
		{"fail too rare for the five-minute alarm", "heartbeat: 5m\n", 0, "between 10s and 1m"},
		{"fail not a duration", "heartbeat: often\n", 0, "want a duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := bridge.ParseConfig([]byte(head+tc.line), func(string) string { return "" })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.HeartbeatInterval(); err != nil || got != tc.want {
				t.Fatalf("HeartbeatInterval = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// beats is a HeartbeatSink that records what it is sent and fails the
// calls it is told to.
type beats struct {
	mu      sync.Mutex
	at      []time.Time
	healthy []int
	beats   []bridge.Beat
	failOn  map[int]bool // call number (from 1) → fail
}

func (b *beats) PutHeartbeat(_ context.Context, beat bridge.Beat) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.at = append(b.at, time.Now())
	b.healthy = append(b.healthy, beat.HealthySigners)
	b.beats = append(b.beats, beat)
	if b.failOn[len(b.at)] {
		return errors.New("no route to CloudWatch")
	}
	return nil
}

func (b *beats) calls() ([]time.Time, []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.at...), append([]int(nil), b.healthy...)
}

func TestHeartbeatRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		failOn   map[int]bool
		wantLogs []string
	}{
		{"ok beats at start and every interval", nil, nil},
		{"ok a failed beat is logged and the next one still goes", map[int]bool{1: true, 2: true},
			[]string{"heartbeat not sent", "no route to CloudWatch", "heartbeat sent again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const interval = 200 * time.Millisecond
			sink := &beats{failOn: tc.failOn}
			var logs syncWriter
			hb := &bridge.Heartbeat{Sink: sink, Interval: interval, Sample: func() bridge.Beat { return bridge.Beat{HealthySigners: 2} },
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			ctx, cancel := context.WithCancel(t.Context())
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- hb.Run(ctx) }()
			deadline := time.Now().Add(5 * time.Second)
			for {
				if at, _ := sink.calls(); len(at) >= 3 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil when the context ends", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not stop when its context ended")
			}
			at, healthy := sink.calls()
			if len(at) < 3 {
				t.Fatalf("%d heartbeats, want at least 3", len(at))
			}
			if first := at[0].Sub(start); first > interval*3/4 {
				t.Errorf("first heartbeat %v after start, want at once", first)
			}
			for i := 1; i < len(at); i++ {
				// Generous: a loaded machine delays ticks, never brings them forward much.
				if gap := at[i].Sub(at[i-1]); gap < interval/4 {
					t.Errorf("heartbeats %d and %d only %v apart", i-1, i, gap)
				}
			}
			for _, h := range healthy {
				if h != 2 {
					t.Errorf("healthy signers %v, want 2 each time", healthy)
					break
				}
			}
			out := logs.String()
			for _, want := range tc.wantLogs {
				if !strings.Contains(out, want) {
					t.Errorf("logs lack %q: %s", want, out)
				}
			}
			if tc.wantLogs == nil && out != "" {
				t.Errorf("logs %s, want none", out)
			}
		})
	}
}

func TestHealthySigners(t *testing.T) {
	t.Parallel()
	st := ceb179.SignerHealth{Signers: []ceb179.SignerStatus{{State: "healthy"}, {State: "disabled"}, {State: "healthy"}, {State: "unhealthy"}, {State: "starting"}}}
	if got := bridge.HealthySigners(st); got != 2 {
		t.Fatalf("HealthySigners = %d, want 2", got)
	}
}

// TestCloudWatchHeartbeatEmulator sends a heartbeat through the SDK to the
// embedded emulator's CloudWatch and reads it back.
func TestCloudWatchHeartbeatEmulator(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	client := cloudwatch.NewFromConfig(env.Config)
	sink := &bridge.CloudWatchHeartbeat{Client: client}
	ctx := t.Context()
	at := time.Now().Truncate(time.Second)
	days := 12.5
	if err := sink.PutHeartbeat(ctx, bridge.Beat{HealthySigners: 3, PINRefused: 1, AllSignersDown: true, CertDaysLeft: &days}); err != nil {
		t.Fatal(err)
	}
	list, err := client.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(bridge.HeartbeatNamespace)})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, m := range list.Metrics {
		names[aws.ToString(m.MetricName)] = len(m.Dimensions)
	}
	for _, want := range []string{bridge.HeartbeatMetric, bridge.HealthySignersMetric, bridge.PINRefusedMetric, bridge.AllSignersDownMetric, bridge.CertDaysLeftMetric} {
		if dims, ok := names[want]; !ok || dims != 0 {
			t.Errorf("metric %s: listed %v with %d dimensions; want listed without dimensions (the alarm has none): %v", want, ok, dims, names)
		}
	}
	for _, tc := range []struct {
		name   string
		metric string
		stat   cwtypes.Statistic
		want   float64
	}{
		{"ok one heartbeat", bridge.HeartbeatMetric, cwtypes.StatisticSum, 1},
		{"ok healthy signers", bridge.HealthySignersMetric, cwtypes.StatisticMaximum, 3},
		{"ok refused PINs", bridge.PINRefusedMetric, cwtypes.StatisticMaximum, 1},
		{"ok all signers down", bridge.AllSignersDownMetric, cwtypes.StatisticMaximum, 1},
		{"ok certificate days left", bridge.CertDaysLeftMetric, cwtypes.StatisticMaximum, 12.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := client.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
				Namespace: aws.String(bridge.HeartbeatNamespace), MetricName: aws.String(tc.metric),
				StartTime: aws.Time(at.Add(-5 * time.Minute)), EndTime: aws.Time(at.Add(5 * time.Minute)),
				Period: aws.Int32(600), Statistics: []cwtypes.Statistic{tc.stat},
			})
			if err != nil {
				t.Fatal(err)
			}
			var got float64
			for _, p := range out.Datapoints {
				switch tc.stat {
				case cwtypes.StatisticSum:
					got += aws.ToFloat64(p.Sum)
				case cwtypes.StatisticMaximum:
					got = max(got, aws.ToFloat64(p.Maximum))
				}
			}
			if got != tc.want {
				t.Errorf("%s %s = %v, want %v (datapoints %+v)", tc.metric, tc.stat, got, tc.want, out.Datapoints)
			}
		})
	}
}

// syncWriter is a buffer safe for concurrent writers.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestHeartbeatUrgentAtOnce: a change of an urgent state is sent at once,
// not at the next interval; a change that is not urgent waits.
func TestHeartbeatUrgentAtOnce(t *testing.T) {
	t.Parallel()
	sink := &beats{}
	var mu sync.Mutex
	cur := bridge.Beat{HealthySigners: 1}
	set := func(b bridge.Beat) {
		mu.Lock()
		cur = b
		mu.Unlock()
	}
	hb := &bridge.Heartbeat{Sink: sink, Interval: time.Hour, Watch: 10 * time.Millisecond,
		Sample: func() bridge.Beat { mu.Lock(); defer mu.Unlock(); return cur }}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = hb.Run(ctx) }()
	waitBeats := func(n int) []bridge.Beat {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			sink.mu.Lock()
			got := append([]bridge.Beat(nil), sink.beats...)
			sink.mu.Unlock()
			if len(got) >= n {
				return got
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("fewer than %d heartbeats", n)
		return nil
	}
	waitBeats(1)
	set(bridge.Beat{HealthySigners: 2}) // not urgent: waits for the interval
	time.Sleep(100 * time.Millisecond)
	if got := waitBeats(1); len(got) != 1 {
		t.Fatalf("a change of healthy signers only was sent at once: %+v", got)
	}
	set(bridge.Beat{HealthySigners: 0, PINRefused: 1, AllSignersDown: true})
	got := waitBeats(2)
	if got[1].PINRefused != 1 || !got[1].AllSignersDown {
		t.Fatalf("urgent beat %+v, want the refused PIN and every signer down", got[1])
	}
	set(bridge.Beat{HealthySigners: 1}) // back to normal: also at once (the alarms' OK)
	if got := waitBeats(3); got[2].PINRefused != 0 || got[2].AllSignersDown {
		t.Fatalf("beat after recovery %+v", got[2])
	}
}

func TestBeatOf(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	guard := func(dir string) *signer.PINGuard {
		t.Helper()
		g, err := signer.NewPINGuard(dir)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// One card refused its PIN, another struck (no usable answer): the
	// guard's listing holds both, and both count.
	refused := guard(t.TempDir())
	for _, c := range []struct {
		card   string
		result signer.PINResult
	}{{"0300000000000cde", signer.PINRefused}, {"0300000000000cdf", signer.PINUnknown}} {
		err := refused.Do(t.Context(), signer.Card{ID: c.card, Signer: "card-" + c.card}, signer.NewPIN("12345678"),
			func(context.Context, signer.PIN) (signer.PINResult, error) { return c.result, errors.New("test") })
		if !errors.Is(err, signer.ErrPINRefused) {
			t.Fatalf("Do = %v, want a refusal or a strike", err)
		}
	}
	unreadable := filepath.Join(t.TempDir(), "markers")
	if err := os.WriteFile(unreadable, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := func(states ...string) ceb179.SignerHealth {
		var h ceb179.SignerHealth
		for i, s := range states {
			h.Signers = append(h.Signers, ceb179.SignerStatus{Name: fmt.Sprint(i), State: s})
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		st      ceb179.SignerHealth
		guard   *signer.PINGuard
		refused int
		down    bool
		days    float64 // -1: none
	}{
		{"ok all healthy, no marker", st("healthy", "healthy"), guard(t.TempDir()), 0, false, -1},
		{"ok one disabled, one healthy: a refusal and a strike", st("disabled: PIN refused", "healthy"), refused, 2, false, -1},
		{"ok every signer down", st("disabled: PIN refused", "unhealthy"), refused, 2, true, -1},
		{"ok starting is not down", st("starting", "unhealthy"), nil, 0, false, -1},
		{"fail unreadable markers count as one refused card", st("healthy"), guard(unreadable), 1, false, -1},
		{"ok soonest certificate", ceb179.SignerHealth{Signers: []ceb179.SignerStatus{
			{State: "healthy", CertNotAfter: now.Add(400 * 24 * time.Hour)}, {State: "healthy", CertNotAfter: now.Add(29*24*time.Hour + 12*time.Hour)}}},
			nil, 0, false, 29.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bridge.BeatOf(tc.st, tc.guard, now)
			days := -1.0
			if b.CertDaysLeft != nil {
				days = *b.CertDaysLeft
			}
			if b.PINRefused != tc.refused || b.AllSignersDown != tc.down || days != tc.days {
				t.Fatalf("BeatOf = %+v (days %v), want refused %d, down %v, days %v", b, days, tc.refused, tc.down, tc.days)
			}
		})
	}
}
