package infra

import "fmt"

// Alarm is what a CloudWatch alarm of the template watches (one metric,
// not a metric math expression) and when it fires.
type Alarm struct {
	// LogicalID is the alarm's logical ID.
	LogicalID string
	// Namespace and MetricName name the metric.
	Namespace, MetricName string
	// Dimensions are the metric's dimensions with literal values.
	Dimensions map[string]string
	// Statistic is Sum, Maximum, ...
	Statistic string
	// Period is the length of one datapoint, in seconds.
	Period int
	// EvaluationPeriods is how many datapoints are looked at, and
	// DatapointsToAlarm how many of them must breach (EvaluationPeriods
	// when the template does not say).
	EvaluationPeriods, DatapointsToAlarm int
	// Threshold and ComparisonOperator say when a datapoint breaches.
	Threshold          float64
	ComparisonOperator string
	// TreatMissingData is breaching, notBreaching, ignore or missing.
	TreatMissingData string
}

// Alarm returns the alarm with logicalID, for evaluating it against local
// metrics (the development stack) the way CloudWatch would.
func (t *Template) Alarm(logicalID string) (Alarm, error) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != TypeAlarm || r.Properties == nil {
		return Alarm{}, fmt.Errorf("template: no alarm %s", logicalID)
	}
	var p struct {
		Namespace          string  `yaml:"Namespace"`
		MetricName         string  `yaml:"MetricName"`
		Statistic          string  `yaml:"Statistic"`
		Period             int     `yaml:"Period"`
		EvaluationPeriods  int     `yaml:"EvaluationPeriods"`
		DatapointsToAlarm  int     `yaml:"DatapointsToAlarm"`
		Threshold          float64 `yaml:"Threshold"`
		ComparisonOperator string  `yaml:"ComparisonOperator"`
		TreatMissingData   string  `yaml:"TreatMissingData"`
		Dimensions         []struct {
			Name  string `yaml:"Name"`
			Value string `yaml:"Value"`
		} `yaml:"Dimensions"`
	}
	if err := r.Properties.Decode(&p); err != nil || p.MetricName == "" {
		return Alarm{}, fmt.Errorf("template: alarm %s does not watch one metric with literal dimensions", logicalID)
	}
	a := Alarm{LogicalID: logicalID, Namespace: p.Namespace, MetricName: p.MetricName, Dimensions: map[string]string{},
		Statistic: p.Statistic, Period: p.Period, EvaluationPeriods: max(p.EvaluationPeriods, 1), DatapointsToAlarm: p.DatapointsToAlarm,
		Threshold: p.Threshold, ComparisonOperator: p.ComparisonOperator, TreatMissingData: p.TreatMissingData}
	if a.DatapointsToAlarm == 0 {
		a.DatapointsToAlarm = a.EvaluationPeriods
	}
	for _, d := range p.Dimensions {
		a.Dimensions[d.Name] = d.Value
	}
	return a, nil
}

// Breaches reports whether a datapoint v breaches the alarm's threshold.
func (a Alarm) Breaches(v float64) bool {
	switch a.ComparisonOperator {
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
