package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/signer"
)

// The bridge's heartbeat in CloudWatch. The bridge runs on the platform's
// premises, so nothing in AWS notices when it stops: it says it is alive
// instead, and the template's alarm fires when it has not done so for five
// minutes. The same call carries the bridge's urgent states (a refused
// PIN, every signer down, a certificate about to expire), each with an
// alarm of its own, and the bridge sends it at once when one of them
// changes, so they reach the alarm topic within a minute or two with no
// inbound port on the card's PC. HsmBridgePolicy allows
// cloudwatch:PutMetricData only in HeartbeatNamespace, so the bridge's
// credentials cannot write the functions' metrics.
const (
	// HeartbeatNamespace is the CloudWatch namespace of the heartbeat.
	HeartbeatNamespace = "ceb179/hsmbridge"
	// HeartbeatMetric is 1 per heartbeat (Count, no dimensions).
	HeartbeatMetric = "Heartbeat"
	// HealthySignersMetric is the number of healthy signers at the
	// heartbeat (Count, no dimensions).
	HealthySignersMetric = "HealthySigners"
	// PINRefusedMetric is the number of cards whose PIN is held refused
	// (a refusal, or a strike: a PIN-bearing call with no clear answer),
	// as the PIN guard lists them (Count, no dimensions).
	PINRefusedMetric = "PINRefused"
	// AllSignersDownMetric is 1 when every signer is disabled or
	// unhealthy, else 0 (no dimensions).
	AllSignersDownMetric = "AllSignersDown"
	// CertDaysLeftMetric is the days until the first of the open signers'
	// certificates expires (no dimensions; not sent while none is open).
	CertDaysLeftMetric = "CertDaysLeft"
	// CertWarnDays is how many days before its expiry a certificate is
	// urgent (the template's BridgeCertExpiryAlarm threshold).
	CertWarnDays = 30
	// DefaultHeartbeatInterval is the time between heartbeats unless the
	// configuration's heartbeat says otherwise.
	DefaultHeartbeatInterval = 60 * time.Second
	// DefaultWatch is how often the bridge looks at its urgent states
	// between heartbeats.
	DefaultWatch = 5 * time.Second
)

// Beat is what one heartbeat says.
type Beat struct {
	// HealthySigners is the number of healthy signers.
	HealthySigners int
	// PINRefused is the number of cards whose PIN is held refused.
	PINRefused int
	// AllSignersDown is true when every signer is disabled or unhealthy
	// (not while one is still starting).
	AllSignersDown bool
	// CertDaysLeft is the days until the first open signer's certificate
	// expires; nil while no signer is open.
	CertDaysLeft *float64
}

// urgent is the part of a beat whose change is sent at once.
func (b Beat) urgent() [3]int {
	soon := 0
	if b.CertDaysLeft != nil && *b.CertDaysLeft < CertWarnDays {
		soon = 1
	}
	down := 0
	if b.AllSignersDown {
		down = 1
	}
	return [3]int{b.PINRefused, down, soon}
}

// HeartbeatSink receives the heartbeats.
type HeartbeatSink interface {
	// PutHeartbeat records one heartbeat.
	PutHeartbeat(ctx context.Context, b Beat) error
}

// CloudWatchHeartbeat is the HeartbeatSink over CloudWatch PutMetricData.
// It needs cloudwatch:PutMetricData (namespace ceb179/hsmbridge).
type CloudWatchHeartbeat struct {
	// Client is the CloudWatch client.
	Client *cloudwatch.Client
}

var _ HeartbeatSink = (*CloudWatchHeartbeat)(nil)

// PutHeartbeat sends HeartbeatMetric (1), HealthySignersMetric and the
// urgent states in one PutMetricData call. The data carry no timestamp:
// CloudWatch stamps them on arrival, so a PC clock that drifts cannot
// misplace them.
func (c *CloudWatchHeartbeat) PutHeartbeat(ctx context.Context, b Beat) error {
	down := 0.0
	if b.AllSignersDown {
		down = 1
	}
	data := []cwtypes.MetricDatum{
		{MetricName: aws.String(HeartbeatMetric), Value: aws.Float64(1), Unit: cwtypes.StandardUnitCount},
		{MetricName: aws.String(HealthySignersMetric), Value: aws.Float64(float64(b.HealthySigners)), Unit: cwtypes.StandardUnitCount},
		{MetricName: aws.String(PINRefusedMetric), Value: aws.Float64(float64(b.PINRefused)), Unit: cwtypes.StandardUnitCount},
		{MetricName: aws.String(AllSignersDownMetric), Value: aws.Float64(down), Unit: cwtypes.StandardUnitCount},
	}
	if b.CertDaysLeft != nil {
		data = append(data, cwtypes.MetricDatum{MetricName: aws.String(CertDaysLeftMetric), Value: aws.Float64(*b.CertDaysLeft), Unit: cwtypes.StandardUnitCount})
	}
	_, err := c.Client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace:  aws.String(HeartbeatNamespace),
		MetricData: data,
	}, func(o *cloudwatch.Options) {
		// A few data points are a few hundred bytes: gzip saves nothing,
		// and sent plain the call is the same against AWS and the
		// emulator the tests use (which does not inflate request bodies).
		o.DisableRequestCompression = true
	})
	if err != nil {
		return fmt.Errorf("put heartbeat: %w", err)
	}
	return nil
}

// Heartbeat sends a heartbeat at start, then every Interval, and at once
// whenever an urgent state changes.
type Heartbeat struct {
	// Sink receives the heartbeats.
	Sink HeartbeatSink
	// Interval is the time between heartbeats (0: DefaultHeartbeatInterval).
	Interval time.Duration
	// Sample returns what a heartbeat says now (nil: an empty beat).
	Sample func() Beat
	// Watch is how often Sample is looked at between heartbeats
	// (0: DefaultWatch).
	Watch time.Duration
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
	watch := h.Watch
	if watch <= 0 {
		watch = DefaultWatch
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = min(every, 10*time.Second)
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sample := h.Sample
	if sample == nil {
		sample = func() Beat { return Beat{} }
	}
	t := time.NewTicker(every)
	defer t.Stop()
	w := time.NewTicker(watch)
	defer w.Stop()
	failing := false
	send := func(b Beat) [3]int {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := h.Sink.PutHeartbeat(sctx, b)
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
		if err != nil {
			// Not sent: a change still to report.
			return [3]int{-1}
		}
		return b.urgent()
	}
	sent := send(sample())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			sent = send(sample())
		case <-w.C:
			if b := sample(); b.urgent() != sent {
				sent = send(b)
			}
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

// BeatOf is what a heartbeat says of the bridge's status st and of the
// cards guard holds refused. It is the one place refused PINs are counted
// for the alarms: through the guard's own listing of its markers
// (Refusals), which holds every card whose PIN must not be sent again.
// A listing that cannot be read counts as one refused card, so that
// someone looks.
func BeatOf(st ceb179.SignerHealth, guard *signer.PINGuard, now time.Time) Beat {
	b := Beat{HealthySigners: HealthySigners(st)}
	if guard != nil {
		rs, err := guard.Refusals()
		b.PINRefused = len(rs)
		if err != nil {
			b.PINRefused = max(b.PINRefused, 1)
		}
	}
	down := len(st.Signers) > 0
	for _, s := range st.Signers {
		if s.State == string(stateHealthy) || s.State == string(stateStarting) {
			down = false
		}
		if !s.CertNotAfter.IsZero() {
			days := math.Floor(s.CertNotAfter.Sub(now).Hours()/24*10) / 10
			if b.CertDaysLeft == nil || days < *b.CertDaysLeft {
				b.CertDaysLeft = &days
			}
		}
	}
	b.AllSignersDown = down
	return b
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
