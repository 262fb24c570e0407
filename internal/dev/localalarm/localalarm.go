// Package localalarm evaluates alarms of template.yaml against the
// development stack's own metrics, the way CloudWatch evaluates them in
// AWS, so that `ceb179 local` and the end-to-end tests see an alarm fire
// and clear: each observed value is one datapoint of the alarm's period,
// and the alarm is ALARM when DatapointsToAlarm of the last
// EvaluationPeriods datapoints breach its threshold, OK otherwise.
package localalarm

import (
	"sync"

	"github.com/ceb179/ceb179/infra"
)

// States of an alarm.
const (
	StateInsufficient = "INSUFFICIENT_DATA"
	StateOK           = "OK"
	StateAlarm        = "ALARM"
)

// Alarm is one template alarm being evaluated. It is safe for concurrent
// use.
type Alarm struct {
	spec infra.Alarm

	mu     sync.Mutex
	points []bool // breaching, newest last, at most EvaluationPeriods
	state  string
	value  float64
}

// New returns the alarm of spec, in state INSUFFICIENT_DATA.
func New(spec infra.Alarm) *Alarm {
	return &Alarm{spec: spec, state: StateInsufficient}
}

// Spec returns what the alarm watches.
func (a *Alarm) Spec() infra.Alarm { return a.spec }

// Observe adds one datapoint and returns the alarm's state and whether it
// changed.
func (a *Alarm) Observe(v float64) (state string, changed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.value = v
	a.points = append(a.points, a.spec.Breaches(v))
	if len(a.points) > a.spec.EvaluationPeriods {
		a.points = a.points[len(a.points)-a.spec.EvaluationPeriods:]
	}
	breaching := 0
	for _, b := range a.points {
		if b {
			breaching++
		}
	}
	next := StateOK
	if breaching >= a.spec.DatapointsToAlarm {
		next = StateAlarm
	}
	changed, a.state = next != a.state, next
	return next, changed
}

// State returns the alarm's state and the last value observed.
func (a *Alarm) State() (string, float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state, a.value
}
