package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The states of a CloudWatch alarm.
const (
	StateAlarm        = "ALARM"
	StateOK           = "OK"
	StateInsufficient = "INSUFFICIENT_DATA"
)

// Change is one alarm state change, as CloudWatch publishes it on the
// alarm topic.
type Change struct {
	// Name is the alarm's name (<stack name>-<runbook>, in English).
	Name string
	// Description is the alarm's description.
	Description string
	// State and OldState are the new and the previous state.
	State, OldState string
	// Reason is CloudWatch's reason for the change.
	Reason string
	// At is when the alarm changed.
	At time.Time
	// Namespace, Metric and Statistic name what the alarm watches; Metric
	// is empty for a metric-math alarm.
	Namespace, Metric, Statistic string
	// Dimensions of the metric, "Name=value".
	Dimensions []string
	// Comparison and Threshold are the alarm's condition; Period is in
	// seconds.
	Comparison string
	Threshold  float64
	Period     int64
	// Value is the latest value named in Reason, when it names one.
	Value *float64
	// Runbook is the runbook section named in the description
	// ("Runbook: docs/operations.md, sign-dlq."), or "".
	Runbook string
	// Details are lines found out when the change arrived, such as the
	// ebpCodes of the jobs waiting in a dead-letter queue.
	Details []string
}

// ErrNotAlarm means a message is not a CloudWatch alarm notification.
var ErrNotAlarm = errors.New("notify: not a CloudWatch alarm notification")

// runbookRef finds the runbook section in an alarm description.
var runbookRef = regexp.MustCompile(`Runbook: docs/operations\.md, ([a-z0-9-]+)`)

// reasonValue finds the first data point in a state reason such as
// "Threshold Crossed: 1 out of the last 1 datapoints [3.0 (13/05/24 10:00:00)] was ...".
var reasonValue = regexp.MustCompile(`\[([-+0-9.eE]+) \(`)

// ParseChange reads one message of the notify queue: a CloudWatch alarm
// notification, either raw (the subscription's RawMessageDelivery) or in
// its SNS envelope.
func ParseChange(body string) (Change, error) {
	var env struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return Change{}, fmt.Errorf("%w: %v", ErrNotAlarm, err)
	}
	if env.Type == "Notification" && env.Message != "" {
		body = env.Message
	}
	var p events.CloudWatchAlarmSNSPayload
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return Change{}, fmt.Errorf("%w: %v", ErrNotAlarm, err)
	}
	if p.AlarmName == "" || p.NewStateValue == "" {
		return Change{}, fmt.Errorf("%w: no AlarmName or NewStateValue", ErrNotAlarm)
	}
	c := Change{
		Name: p.AlarmName, Description: p.AlarmDescription, State: p.NewStateValue, OldState: p.OldStateValue,
		Reason: p.NewStateReason, Namespace: p.Trigger.Namespace, Metric: p.Trigger.MetricName,
		Statistic: p.Trigger.Statistic, Comparison: p.Trigger.ComparisonOperator, Threshold: p.Trigger.Threshold,
		Period: p.Trigger.Period,
	}
	for _, d := range p.Trigger.Dimensions {
		c.Dimensions = append(c.Dimensions, d.Name+"="+d.Value)
	}
	c.At = parseTime(p.StateChangeTime)
	if m := runbookRef.FindStringSubmatch(p.AlarmDescription); m != nil {
		c.Runbook = m[1]
	}
	if m := reasonValue.FindStringSubmatch(p.NewStateReason); m != nil {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			c.Value = &v
		}
	}
	return c, nil
}

// parseTime reads CloudWatch's StateChangeTime ("2024-05-13T10:01:23.456+0000").
func parseTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Payload returns the CloudWatch notification for a change, as CloudWatch
// publishes it (the local stack raises its alarms this way).
func Payload(c Change) events.CloudWatchAlarmSNSPayload {
	p := events.CloudWatchAlarmSNSPayload{
		AlarmName: c.Name, AlarmDescription: c.Description, NewStateValue: c.State, OldStateValue: c.OldState,
		NewStateReason: c.Reason, StateChangeTime: c.At.UTC().Format("2006-01-02T15:04:05.000-0700"),
		Trigger: events.CloudWatchAlarmTrigger{
			Period: c.Period, ComparisonOperator: c.Comparison, Threshold: c.Threshold,
			MetricName: c.Metric, Namespace: c.Namespace, Statistic: strings.ToUpper(c.Statistic), StatisticType: "Statistic",
		},
	}
	for _, d := range c.Dimensions {
		name, value, _ := strings.Cut(d, "=")
		p.Trigger.Dimensions = append(p.Trigger.Dimensions, events.CloudWatchDimension{Name: name, Value: value})
	}
	return p
}
