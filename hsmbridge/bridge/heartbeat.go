package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/ceb179/ceb179"
)

// The bridge's heartbeat in CloudWatch. The bridge runs on the platform's
// premises, so nothing in AWS notices when it stops: it says it is alive
// instead, and the template's alarm fires when it has not done so for five
// minutes. HsmBridgePolicy allows cloudwatch:PutMetricData only in
// HeartbeatNamespace, so the bridge's credentials cannot write the
// functions' metrics.
const (
	// HeartbeatNamespace is the CloudWatch namespace of the heartbeat.
	HeartbeatNamespace = "ceb179/hsmbridge"
	// HeartbeatMetric is 1 per heartbeat (Count, no dimensions).
	HeartbeatMetric = "Heartbeat"
	// HealthySignersMetric is the number of healthy signers at the
	// heartbeat (Count, no dimensions).
	HealthySignersMetric = "HealthySigners"
	// DefaultHeartbeatInterval is the time between heartbeats unless the
	// configuration's heartbeat says otherwise.
	DefaultHeartbeatInterval = 60 * time.Second
)

// HeartbeatSink receives the heartbeats.
type HeartbeatSink interface {
	// PutHeartbeat records one heartbeat with the number of healthy
	// signers now.
	PutHeartbeat(ctx context.Context, healthySigners int) error
}

// CloudWatchHeartbeat is the HeartbeatSink over CloudWatch PutMetricData.
// It needs cloudwatch:PutMetricData (namespace ceb179/hsmbridge).
type CloudWatchHeartbeat struct {
	// Client is the CloudWatch client.
	Client *cloudwatch.Client
}

var _ HeartbeatSink = (*CloudWatchHeartbeat)(nil)

// PutHeartbeat sends HeartbeatMetric (1) and HealthySignersMetric in one
// PutMetricData call. The data carry no timestamp: CloudWatch stamps them
// on arrival, so a PC clock that drifts cannot misplace them.
func (c *CloudWatchHeartbeat) PutHeartbeat(ctx context.Context, healthySigners int) error {
	_, err := c.Client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace: aws.String(HeartbeatNamespace),
		MetricData: []cwtypes.MetricDatum{
			{MetricName: aws.String(HeartbeatMetric), Value: aws.Float64(1), Unit: cwtypes.StandardUnitCount},
			{MetricName: aws.String(HealthySignersMetric), Value: aws.Float64(float64(healthySigners)), Unit: cwtypes.StandardUnitCount},
		},
	}, func(o *cloudwatch.Options) {
		// Two data points are a few hundred bytes: gzip saves nothing, and
		// sent plain the call is the same against AWS and the emulator the
		// tests use (which does not inflate request bodies).
		o.DisableRequestCompression = true
	})
	if err != nil {
		return fmt.Errorf("put heartbeat: %w", err)
	}
	return nil
}

// Heartbeat sends a heartbeat at start and then every Interval.
type Heartbeat struct {
	// Sink receives the heartbeats.
	Sink HeartbeatSink
	// Interval is the time between heartbeats (0: DefaultHeartbeatInterval).
	Interval time.Duration
	// Healthy returns the number of healthy signers (nil: 0).
	Healthy func() int
	// Logger receives failures (nil: discard). A heartbeat that fails is
	// logged and the next one is sent on time; failures never stop it.
	Logger *slog.Logger
	// Timeout bounds one send (0: the interval, at most 10 s).
	Timeout time.Duration
}

// Run sends heartbeats until ctx ends and then returns nil.
func (h *Heartbeat) Run(ctx context.Context) error {
	every := h.Interval
	if every <= 0 {
		every = DefaultHeartbeatInterval
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = min(every, 10*time.Second)
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		healthy := 0
		if h.Healthy != nil {
			healthy = h.Healthy()
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := h.Sink.PutHeartbeat(sctx, healthy)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			// Every failure is logged: a bridge that cannot reach
			// CloudWatch is about to be reported dead.
			log.Warn("heartbeat not sent", slog.String("error", err.Error()))
			failing = true
		case err == nil && failing:
			log.Info("heartbeat sent again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// HealthySigners counts the signers of st that are healthy.
func HealthySigners(st ceb179.SignerHealth) int {
	n := 0
	for _, s := range st.Signers {
		if s.State == string(stateHealthy) {
			n++
		}
	}
	return n
}

// HeartbeatInterval returns the time between heartbeats the configuration
// asks for: DefaultHeartbeatInterval when heartbeat is empty, 0 for "off",
// else the duration (from 10s to 1m, so that the five-minute alarm sees
// several heartbeats).
func (c *Config) HeartbeatInterval() (time.Duration, error) {
	v := strings.TrimSpace(c.Heartbeat)
	switch v {
	case "":
		return DefaultHeartbeatInterval, nil
	case "off":
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("heartbeat %q: want a duration such as 60s, or off", v)
	}
	if d < 10*time.Second || d > time.Minute {
		return 0, fmt.Errorf("heartbeat %s: must be between 10s and 1m (or off)", d)
	}
	return d, nil
}
