package infra

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// AlarmSpec is a CloudWatch alarm of the template, as `ceb179 local`
// evaluates it (package internal/dev/alarmeval).
type AlarmSpec struct {
	// LogicalID is the alarm's logical ID.
	LogicalID string
	// Name is the AlarmName expression (a !Sub of the stack name).
	Name Expr
	// Description is the AlarmDescription.
	Description string
	// Namespace, Metric and Statistic name a single-metric alarm; Metric
	// is empty for a metric-math alarm (Metrics).
	Namespace, Metric, Statistic string
	// Dimensions are the metric's dimensions, values as expressions.
	Dimensions []DimensionSpec
	// Period is in seconds.
	Period int
	// EvaluationPeriods and DatapointsToAlarm (0 when not set).
	EvaluationPeriods, DatapointsToAlarm int
	// Threshold and ComparisonOperator are the condition.
	Threshold  float64
	Comparison string
	// TreatMissingData as written ("" when not set).
	TreatMissingData string
	// OKActions tells whether the alarm notifies when it returns to OK.
	OKActions bool
}

// DimensionSpec is one dimension of an alarm's metric.
type DimensionSpec struct {
	// Name is the dimension's name.
	Name string
	// Value is its value, a literal or a reference.
	Value Expr
}

// Alarms returns the template's CloudWatch alarms, sorted by logical ID.
func (t *Template) Alarms() ([]AlarmSpec, error) {
	var out []AlarmSpec
	for _, id := range t.IDs(TypeAlarm) {
		var p struct {
			AlarmName          yaml.Node   `yaml:"AlarmName"`
			AlarmDescription   string      `yaml:"AlarmDescription"`
			Namespace          string      `yaml:"Namespace"`
			MetricName         string      `yaml:"MetricName"`
			Statistic          string      `yaml:"Statistic"`
			Period             int         `yaml:"Period"`
			EvaluationPeriods  int         `yaml:"EvaluationPeriods"`
			DatapointsToAlarm  int         `yaml:"DatapointsToAlarm"`
			Threshold          float64     `yaml:"Threshold"`
			ComparisonOperator string      `yaml:"ComparisonOperator"`
			TreatMissingData   string      `yaml:"TreatMissingData"`
			OKActions          []yaml.Node `yaml:"OKActions"`
			Dimensions         []struct {
				Name  string    `yaml:"Name"`
				Value yaml.Node `yaml:"Value"`
			} `yaml:"Dimensions"`
		}
		if err := t.Resources[id].Properties.Decode(&p); err != nil {
			return nil, fmt.Errorf("alarm %s: %w", id, err)
		}
		a := AlarmSpec{LogicalID: id, Name: Expr{&p.AlarmName}, Description: p.AlarmDescription, Namespace: p.Namespace,
			Metric: p.MetricName, Statistic: p.Statistic, Period: p.Period, EvaluationPeriods: p.EvaluationPeriods,
			DatapointsToAlarm: p.DatapointsToAlarm, Threshold: p.Threshold, Comparison: p.ComparisonOperator,
			TreatMissingData: p.TreatMissingData, OKActions: len(p.OKActions) > 0}
		for i := range p.Dimensions {
			a.Dimensions = append(a.Dimensions, DimensionSpec{Name: p.Dimensions[i].Name, Value: Expr{&p.Dimensions[i].Value}})
		}
		out = append(out, a)
	}
	return out, nil
}
