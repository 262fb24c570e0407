// Package alarmeval raises template.yaml's CloudWatch alarms on the local
// stack, which has no CloudWatch: it reads the alarm definitions from the
// template, collects the metrics the local components emit (the functions'
// Embedded Metric Format lines, hsmbridge's heartbeat, the depth of the
// queues the SQS alarms watch) and evaluates each alarm as CloudWatch does
// (statistic per period, datapoints to alarm, treatment of missing data),
// raising a change as CloudWatch would publish it to the alarm topic.
//
// It is deliberately small, and differs from CloudWatch in three ways: it
// evaluates every few seconds over the periods ending now (CloudWatch, each
// minute over whole periods), so a local alarm may fire up to a period
// sooner; an alarm starts OK, not INSUFFICIENT_DATA, so starting the stack
// sends nothing; and alarms the local stack has no data for (metric math,
// AWS/Lambda, AWS/WAFV2) are not evaluated: Load lists them.
package alarmeval

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/notify"
)

// Alarm is one alarm of the template, resolved for the local stack.
type Alarm struct {
	// ID is the logical ID; Name and Description as deployed.
	ID, Name, Description string
	// Namespace, Metric, Statistic and Dimensions name what is watched.
	Namespace, Metric, Statistic string
	Dimensions                   map[string]string
	// Period, EvaluationPeriods and DatapointsToAlarm as in the template.
	Period                     time.Duration
	EvaluationPeriods, ToAlarm int
	// Threshold and Comparison are the condition.
	Threshold  float64
	Comparison string
	// Missing is TreatMissingData.
	Missing string
	// OKActions tells whether returning to OK notifies.
	OKActions bool
}

// local are the namespaces the local stack has data for.
var local = map[string]bool{"ceb179": true, bridge.HeartbeatNamespace: true, "AWS/SQS": true}

// Load returns the template's alarms the local stack can evaluate,
// resolved against stack, and the logical IDs of those it cannot.
func Load(stack *infra.Stack) (alarms []Alarm, skipped []string, err error) {
	specs, err := stack.Template.Alarms()
	if err != nil {
		return nil, nil, err
	}
	for _, p := range specs {
		if p.Metric == "" || !local[p.Namespace] {
			skipped = append(skipped, p.LogicalID)
			continue
		}
		name, err := p.Name.Resolve(stack)
		if err != nil {
			return nil, nil, fmt.Errorf("alarm %s: name: %w", p.LogicalID, err)
		}
		a := Alarm{ID: p.LogicalID, Name: name, Description: p.Description, Namespace: p.Namespace, Metric: p.Metric,
			Statistic: p.Statistic, Dimensions: map[string]string{}, Period: time.Duration(p.Period) * time.Second,
			EvaluationPeriods: max(p.EvaluationPeriods, 1), ToAlarm: p.DatapointsToAlarm, Threshold: p.Threshold,
			Comparison: p.Comparison, Missing: p.TreatMissingData, OKActions: p.OKActions}
		if a.ToAlarm <= 0 {
			a.ToAlarm = a.EvaluationPeriods
		}
		if a.Missing == "" {
			a.Missing = "missing"
		}
		for _, d := range p.Dimensions {
			v, err := d.Value.Resolve(stack)
			if err != nil {
				return nil, nil, fmt.Errorf("alarm %s: dimension %s: %w", p.LogicalID, d.Name, err)
			}
			a.Dimensions[d.Name] = v
		}
		alarms = append(alarms, a)
	}
	return alarms, skipped, nil
}

// point is one data point.
type point struct {
	at time.Time
	v  float64
}

// Metrics holds the data points the local components emit. It is an
// io.Writer of Embedded Metric Format lines (a metrics.Recorder's output)
// and hsmbridge's HeartbeatSink. It is safe for concurrent use.
type Metrics struct {
	mu     sync.Mutex
	points map[string][]point
}

// NewMetrics returns an empty store.
func NewMetrics() *Metrics { return &Metrics{points: map[string][]point{}} }

var _ bridge.HeartbeatSink = (*Metrics)(nil)

// metricKey names a metric with its dimensions.
func metricKey(ns, name string, dims map[string]string) string {
	keys := make([]string, 0, len(dims))
	for k, v := range dims {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return ns + "|" + name + "|" + strings.Join(keys, ",")
}

// Put records one data point; points older than a day are dropped.
func (m *Metrics) Put(ns, name string, dims map[string]string, v float64, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := metricKey(ns, name, dims)
	ps := append(m.points[k], point{at, v})
	for len(ps) > 0 && at.Sub(ps[0].at) > 24*time.Hour {
		ps = ps[1:]
	}
	m.points[k] = ps
}

// Write reads Embedded Metric Format lines, as CloudWatch reads them from
// a function's log.
func (m *Metrics) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &doc) != nil {
			continue
		}
		var meta struct {
			Timestamp         int64 `json:"Timestamp"`
			CloudWatchMetrics []struct {
				Namespace  string     `json:"Namespace"`
				Dimensions [][]string `json:"Dimensions"`
				Metrics    []struct {
					Name string `json:"Name"`
				} `json:"Metrics"`
			} `json:"CloudWatchMetrics"`
		}
		if json.Unmarshal(doc["_aws"], &meta) != nil {
			continue
		}
		at := time.UnixMilli(meta.Timestamp)
		for _, d := range meta.CloudWatchMetrics {
			dims := map[string]string{}
			for _, set := range d.Dimensions {
				for _, name := range set {
					var v string
					if json.Unmarshal(doc[name], &v) == nil {
						dims[name] = v
					}
				}
			}
			for _, mt := range d.Metrics {
				var v float64
				if json.Unmarshal(doc[mt.Name], &v) == nil {
					m.Put(d.Namespace, mt.Name, dims, v, at)
				}
			}
		}
	}
	return len(p), nil
}

// PutHeartbeat records a heartbeat of the local hsmbridge, as
// CloudWatchHeartbeat sends it.
func (m *Metrics) PutHeartbeat(_ context.Context, b bridge.Beat) error {
	now := time.Now()
	ns := bridge.HeartbeatNamespace
	m.Put(ns, bridge.HeartbeatMetric, nil, 1, now)
	m.Put(ns, bridge.HealthySignersMetric, nil, float64(b.HealthySigners), now)
	m.Put(ns, bridge.PINRefusedMetric, nil, float64(b.PINRefused), now)
	down := 0.0
	if b.AllSignersDown {
		down = 1
	}
	m.Put(ns, bridge.AllSignersDownMetric, nil, down, now)
	if b.CertDaysLeft != nil {
		m.Put(ns, bridge.CertDaysLeftMetric, nil, *b.CertDaysLeft, now)
	}
	return nil
}

// stat returns the statistic of the points of a metric in (from, to], and
// false when there are none.
func (m *Metrics) stat(a Alarm, from, to time.Time) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var vs []float64
	for _, p := range m.points[metricKey(a.Namespace, a.Metric, a.Dimensions)] {
		if p.at.After(from) && !p.at.After(to) {
			vs = append(vs, p.v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	sum, lo, hi := 0.0, vs[0], vs[0]
	for _, v := range vs {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	switch a.Statistic {
	case "Maximum":
		return hi, true
	case "Minimum":
		return lo, true
	case "Average":
		return sum / float64(len(vs)), true
	case "SampleCount":
		return float64(len(vs)), true
	}
	return sum, true
}

// Depth reads the number of messages waiting in a queue (visible) and
// those received and not deleted.
type Depth interface {
	Depth(ctx context.Context) (waiting, inFlight int, err error)
}

// Evaluator evaluates the alarms every Every and raises their changes.
type Evaluator struct {
	// Alarms are the alarms evaluated.
	Alarms []Alarm
	// Metrics holds their data.
	Metrics *Metrics
	// Queues read the depth of the queues AWS/SQS alarms watch, by queue
	// name.
	Queues map[string]Depth
	// Raise receives each change (ALARM, and OK for alarms with OK actions).
	Raise func(ctx context.Context, c notify.Change) error
	// Every is how often the alarms are evaluated (default 10 s).
	Every time.Duration
	// Log receives failures (nil: discard).
	Log *slog.Logger

	state map[string]string
}

// Run evaluates until ctx ends and returns nil.
func (e *Evaluator) Run(ctx context.Context) error {
	every := e.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			e.Evaluate(ctx, now)
		}
	}
}

// Evaluate evaluates every alarm once, at now.
func (e *Evaluator) Evaluate(ctx context.Context, now time.Time) {
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if e.state == nil {
		e.state = map[string]string{}
	}
	sampled := map[string]bool{}
	for _, a := range e.Alarms {
		q := a.Dimensions["QueueName"]
		if a.Namespace != "AWS/SQS" || sampled[q] || e.Queues[q] == nil {
			continue
		}
		sampled[q] = true
		if n, _, err := e.Queues[q].Depth(ctx); err == nil {
			e.Metrics.Put(a.Namespace, a.Metric, a.Dimensions, float64(n), now)
		} else if ctx.Err() == nil {
			log.Warn("local alarms: queue depth not read", slog.String("queue", q), slog.String("error", err.Error()))
		}
	}
	for _, a := range e.Alarms {
		old := e.state[a.Name]
		if old == "" {
			old = notify.StateOK
		}
		next, reason := e.judge(a, now, old)
		if next == old {
			continue
		}
		e.state[a.Name] = next
		if next == notify.StateOK && !a.OKActions {
			continue
		}
		c := notify.Change{Name: a.Name, Description: a.Description, State: next, OldState: old, Reason: reason, At: now,
			Namespace: a.Namespace, Metric: a.Metric, Statistic: a.Statistic, Comparison: a.Comparison, Threshold: a.Threshold,
			Period: int64(a.Period / time.Second)}
		for k, v := range a.Dimensions {
			c.Dimensions = append(c.Dimensions, k+"="+v)
		}
		if err := e.Raise(ctx, c); err != nil && ctx.Err() == nil {
			log.Error("local alarms: change not raised", slog.String("alarm", a.Name), slog.String("error", err.Error()))
		}
	}
}

// judge returns the state of a at now given the state before, and
// CloudWatch's kind of reason.
func (e *Evaluator) judge(a Alarm, now time.Time, old string) (string, string) {
	bad, seen := 0, 0
	var latest *float64
	for k := range a.EvaluationPeriods {
		to := now.Add(-time.Duration(k) * a.Period)
		v, ok := e.Metrics.stat(a, to.Add(-a.Period), to)
		if ok && latest == nil {
			latest = &v
		}
		switch {
		case ok:
			seen++
			if breaches(a, v) {
				bad++
			}
		case a.Missing == "breaching":
			seen++
			bad++
		case a.Missing == "notBreaching":
			seen++
		}
	}
	if seen == 0 {
		return old, ""
	}
	value := "no data"
	if latest != nil {
		value = fmt.Sprintf("[%s (%s)]", strconv.FormatFloat(*latest, 'f', -1, 64), now.UTC().Format("02/01/06 15:04:05"))
	}
	reason := fmt.Sprintf("Local evaluation: %d out of the last %d datapoints %s breached the threshold (%s %s).",
		bad, a.EvaluationPeriods, value, a.Comparison, strconv.FormatFloat(a.Threshold, 'f', -1, 64))
	if bad >= a.ToAlarm {
		return notify.StateAlarm, reason
	}
	return notify.StateOK, reason
}

func breaches(a Alarm, v float64) bool {
	switch a.Comparison {
	case "GreaterThanThreshold":
		return v > a.Threshold
	case "GreaterThanOrEqualToThreshold":
		return v >= a.Threshold
	case "LessThanThreshold":
		return v < a.Threshold
	case "LessThanOrEqualToThreshold":
		return v <= a.Threshold
	}
	return false
}
