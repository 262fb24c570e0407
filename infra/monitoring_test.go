package infra_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/assemble"
	"github.com/ceb179/ceb179/internal/ingest"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/settle"
	"github.com/ceb179/ceb179/internal/upload"
)

// alarmProps is what the tests read of an AWS::CloudWatch::Alarm.
type alarmProps struct {
	AlarmName          yaml.Node   `yaml:"AlarmName"`
	AlarmDescription   string      `yaml:"AlarmDescription"`
	Namespace          string      `yaml:"Namespace"`
	MetricName         string      `yaml:"MetricName"`
	Dimensions         []dimProp   `yaml:"Dimensions"`
	Statistic          string      `yaml:"Statistic"`
	Period             int         `yaml:"Period"`
	EvaluationPeriods  int         `yaml:"EvaluationPeriods"`
	DatapointsToAlarm  int         `yaml:"DatapointsToAlarm"`
	Threshold          float64     `yaml:"Threshold"`
	ComparisonOperator string      `yaml:"ComparisonOperator"`
	TreatMissingData   string      `yaml:"TreatMissingData"`
	AlarmActions       []yaml.Node `yaml:"AlarmActions"`
	OKActions          []yaml.Node `yaml:"OKActions"`
	Metrics            []struct {
		ID         string `yaml:"Id"`
		Expression string `yaml:"Expression"`
		ReturnData *bool  `yaml:"ReturnData"`
		MetricStat *struct {
			Metric struct {
				Namespace  string    `yaml:"Namespace"`
				MetricName string    `yaml:"MetricName"`
				Dimensions []dimProp `yaml:"Dimensions"`
			} `yaml:"Metric"`
			Period int    `yaml:"Period"`
			Stat   string `yaml:"Stat"`
		} `yaml:"MetricStat"`
	} `yaml:"Metrics"`
}

type dimProp struct {
	Name  string    `yaml:"Name"`
	Value yaml.Node `yaml:"Value"`
}

// dims renders dimensions as "Name=value" with values that are template
// expressions shown as the logical ID they refer to.
func dims(ds []dimProp) string {
	var out []string
	for _, d := range ds {
		v := d.Value.Value
		if refs := infra.ExprOf(&d.Value).References(); len(refs) > 0 {
			v = refs[0]
		}
		out = append(out, d.Name+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func decodeAlarm(t *testing.T, r infra.Resource) alarmProps {
	t.Helper()
	var p alarmProps
	if err := r.Properties.Decode(&p); err != nil {
		t.Fatalf("%s: %v", r.LogicalID, err)
	}
	return p
}

// refsTo reports whether one of nodes is !Ref (or !GetAtt) target.
func refsTo(nodes []yaml.Node, target string) bool {
	for i := range nodes {
		if slices.Contains(infra.ExprOf(&nodes[i]).References(), target) {
			return true
		}
	}
	return false
}

// TestTemplateAlarms checks that every alarm the operations issue asks for
// exists on the right metric, namespace, statistic, threshold and
// treatment of missing data, notifies the alarm topic, and names a runbook;
// and that the template holds no alarm this test does not know.
func TestTemplateAlarms(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	const bridgeNS = bridge.HeartbeatNamespace
	type want struct {
		ns, metric, dims, stat string
		period, evals, dta     int
		threshold              float64
		cmp, missing           string
		ok                     bool // also notifies when it returns to OK
	}
	count := func(ns, metric, dims string) want {
		return want{ns: ns, metric: metric, dims: dims, stat: "Sum", period: 60, evals: 1, threshold: 0,
			cmp: "GreaterThanThreshold", missing: "notBreaching"}
	}
	dlq := func(queue string) want {
		w := count("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName="+queue)
		w.stat, w.ok = "Maximum", true
		return w
	}
	cases := []struct {
		name string
		id   string
		want want
	}{
		{"ok any message in the assemble DLQ", "AssembleDeadLetterAlarm", dlq("AssembleDeadLetterQueue")},
		{"ok any message in the sign DLQ", "SignDeadLetterAlarm", dlq("SignDeadLetterQueue")},
		{"ok any late upload", "UploadLateAlarm", count(metrics.Namespace, upload.MetricLate, "Component=upload")},
		{"ok any failed upload", "UploadFailedAlarm", count(metrics.Namespace, upload.MetricFailed, "Component=upload")},
		{"ok any rejected upload", "UploadRejectedAlarm", count(metrics.Namespace, upload.MetricRejected, "Component=upload")},
		{"ok any NO_DATA", "AssembleNoDataAlarm", count(metrics.Namespace, assemble.MetricNoData, "Component=assemble")},
		{"ok any INVALID", "AssembleInvalidAlarm", count(metrics.Namespace, assemble.MetricInvalid, "Component=assemble")},
		{"ok any caller refused by the allowlist", "IngestRefusedAlarm", count(metrics.Namespace, ingest.MetricRefused, "Component=ingest")},
		{"ok any capped order", "IngestCappedAlarm", count(metrics.Namespace, ingest.MetricCapped, "Component=ingest")},
		{"ok no bridge heartbeat for 5 minutes", "BridgeHeartbeatAlarm", want{ns: bridgeNS, metric: bridge.HeartbeatMetric,
			stat: "Sum", period: 60, evals: 5, dta: 5, threshold: 1, cmp: "LessThanThreshold", missing: "breaching", ok: true}},
		{"ok requests stuck past their deadline for 5 minutes", "SettleStuckAlarm", want{ns: metrics.Namespace, metric: settle.MetricStuck, dims: "Component=settle",
			stat: "Maximum", period: 60, evals: 5, dta: 5, threshold: 0, cmp: "GreaterThanThreshold", missing: "notBreaching", ok: true}},
		{"ok declared orders without a payment record", "SettleMissingAlarm", want{ns: metrics.Namespace, metric: settle.MetricMissing, dims: "Component=settle",
			stat: "Maximum", period: 60, evals: 1, threshold: 0, cmp: "GreaterThanThreshold", missing: "notBreaching", ok: true}},
		{"ok no healthy signer for 5 minutes", "BridgeNoSignerAlarm", want{ns: bridgeNS, metric: bridge.HealthySignersMetric,
			stat: "Maximum", period: 60, evals: 5, dta: 5, threshold: 1, cmp: "LessThanThreshold", missing: "notBreaching", ok: true}},
		{"ok a card refused its PIN (or a strike), at once", "BridgePINRefusedAlarm", want{ns: bridgeNS, metric: bridge.PINRefusedMetric,
			stat: "Maximum", period: 60, evals: 1, threshold: 0, cmp: "GreaterThanThreshold", missing: "ignore", ok: true}},
		{"ok every signer down for a minute", "BridgeSignersDownAlarm", want{ns: bridgeNS, metric: bridge.AllSignersDownMetric,
			stat: "Minimum", period: 60, evals: 1, threshold: 1, cmp: "GreaterThanOrEqualToThreshold", missing: "ignore", ok: true}},
		{"ok a certificate expires within 30 days", "BridgeCertExpiryAlarm", want{ns: bridgeNS, metric: bridge.CertDaysLeftMetric,
			stat: "Minimum", period: 60, evals: 1, threshold: 30, cmp: "LessThanThreshold", missing: "ignore", ok: true}},
		{"ok a robot did not take an alarm message", "NotifyFailedAlarm", count(metrics.Namespace, notify.MetricFailed, "Component=notify")},
		{"ok any message in the notify DLQ", "NotifyDeadLetterAlarm", dlq("NotifyDeadLetterQueue")},
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		for _, m := range []string{"Errors", "Throttles"} {
			cases = append(cases, struct {
				name string
				id   string
				want want
			}{"ok Lambda " + m + " of " + f.LogicalID, f.LogicalID + m + "Alarm", count("AWS/Lambda", m, "FunctionName="+f.LogicalID)})
		}
	}

	const ingestID = "IngestErrorAnswerAlarm"
	// FrontDoorRateRuleAlarm is checked by TestFrontDoorAlarms.
	known := map[string]bool{ingestID: true, "FrontDoorRateRuleAlarm": true}
	for _, tc := range cases {
		known[tc.id] = true
		t.Run(tc.name, func(t *testing.T) {
			r, ok := tpl.Resources[tc.id]
			if !ok || r.Type != infra.TypeAlarm {
				t.Fatalf("no alarm %s", tc.id)
			}
			p := decodeAlarm(t, r)
			w := tc.want
			got := want{ns: p.Namespace, metric: p.MetricName, dims: dims(p.Dimensions), stat: p.Statistic,
				period: p.Period, evals: p.EvaluationPeriods, dta: p.DatapointsToAlarm, threshold: p.Threshold,
				cmp: p.ComparisonOperator, missing: p.TreatMissingData, ok: refsTo(p.OKActions, "AlarmTopic")}
			if got != w {
				t.Errorf("%s\n got %+v\nwant %+v", tc.id, got, w)
			}
		})
	}

	t.Run("ok ingest 2000x answers: StoreFailure + QueueFailure", func(t *testing.T) {
		r, ok := tpl.Resources[ingestID]
		if !ok || r.Type != infra.TypeAlarm {
			t.Fatalf("no alarm %s", ingestID)
		}
		p := decodeAlarm(t, r)
		ids := map[string]string{}
		var expr []string
		for _, m := range p.Metrics {
			switch {
			case m.MetricStat != nil:
				ms := m.MetricStat
				if ms.Metric.Namespace != metrics.Namespace || dims(ms.Metric.Dimensions) != "Component=ingest" || ms.Stat != "Sum" || ms.Period != 60 {
					t.Errorf("metric %s: %+v", m.ID, ms)
				}
				if m.ReturnData == nil || *m.ReturnData {
					t.Errorf("metric %s must have ReturnData false", m.ID)
				}
				ids[ms.Metric.MetricName] = m.ID
			case m.Expression != "":
				if m.ReturnData == nil || !*m.ReturnData {
					t.Errorf("expression %s must return data", m.ID)
				}
				expr = append(expr, m.Expression)
			}
		}
		if len(expr) != 1 {
			t.Fatalf("expressions %v, want one", expr)
		}
		for _, name := range []string{ingest.MetricStoreFailure, ingest.MetricQueueFailure} {
			id, ok := ids[name]
			if !ok || !regexp.MustCompile(`\b`+regexp.QuoteMeta(id)+`\b`).MatchString(expr[0]) {
				t.Errorf("%s (id %q) is not in the expression %q", name, id, expr[0])
			}
		}
		if p.Threshold != 0 || p.ComparisonOperator != "GreaterThanThreshold" || p.TreatMissingData != "notBreaching" || p.EvaluationPeriods != 1 {
			t.Errorf("threshold %v %s, missing data %s, periods %d", p.Threshold, p.ComparisonOperator, p.TreatMissingData, p.EvaluationPeriods)
		}
	})

	t.Run("ok every alarm notifies the topic and names its runbook", func(t *testing.T) {
		if tpl.Resources["AlarmTopic"].Type != infra.TypeTopic {
			t.Fatal("AlarmTopic is not an SNS topic")
		}
		for _, id := range tpl.IDs(infra.TypeAlarm) {
			p := decodeAlarm(t, tpl.Resources[id])
			if !refsTo(p.AlarmActions, "AlarmTopic") {
				t.Errorf("%s: AlarmActions do not notify AlarmTopic", id)
			}
			if !strings.Contains(p.AlarmDescription, "Runbook: docs/operations.md") {
				t.Errorf("%s: description %q names no runbook", id, p.AlarmDescription)
			}
			if s, ok := infra.ExprOf(&p.AlarmName).Sub(); !ok || !strings.HasPrefix(s, "${AWS::StackName}-") {
				t.Errorf("%s: AlarmName %s, want !Sub ${AWS::StackName}-...", id, infra.ExprOf(&p.AlarmName))
			}
		}
	})

	t.Run("fail an alarm the test does not check", func(t *testing.T) {
		for _, id := range tpl.IDs(infra.TypeAlarm) {
			if !known[id] {
				t.Errorf("alarm %s is not checked here: add it to the cases", id)
			}
		}
	})

	t.Run("ok e-mail subscription is optional", func(t *testing.T) {
		p := tpl.Parameters["AlarmEmail"]
		if p.Type != "String" || p.Default != "none" {
			t.Errorf("AlarmEmail %+v, want String defaulting to none", p)
		}
		var sub struct {
			TopicArn yaml.Node `yaml:"TopicArn"`
			Protocol string    `yaml:"Protocol"`
			Endpoint yaml.Node `yaml:"Endpoint"`
		}
		r := tpl.Resources["AlarmEmailSubscription"]
		if r.Type != infra.TypeSubscription {
			t.Fatal("no AlarmEmailSubscription")
		}
		if err := r.Properties.Decode(&sub); err != nil {
			t.Fatal(err)
		}
		if ref, _ := infra.ExprOf(&sub.TopicArn).Ref(); ref != "AlarmTopic" || sub.Protocol != "email" {
			t.Errorf("subscription %s %s", infra.ExprOf(&sub.TopicArn), sub.Protocol)
		}
		if ref, _ := infra.ExprOf(&sub.Endpoint).Ref(); ref != "AlarmEmail" {
			t.Errorf("subscription endpoint %s, want !Ref AlarmEmail", infra.ExprOf(&sub.Endpoint))
		}
	})
}

// placeholder matches a ${...} variable of a Fn::Sub string.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// TestTemplateDashboard checks that the dashboard body is valid JSON once
// its ${...} placeholders are substituted, that each metric line is well
// formed, that the key metrics are on it, and that its alarm widget shows
// every alarm of the template.
func TestTemplateDashboard(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	ids := tpl.IDs(infra.TypeDashboard)
	if len(ids) != 1 {
		t.Fatalf("dashboards %v, want one", ids)
	}
	var p struct {
		DashboardBody yaml.Node `yaml:"DashboardBody"`
	}
	if err := tpl.Resources[ids[0]].Properties.Decode(&p); err != nil {
		t.Fatal(err)
	}
	body, ok := infra.ExprOf(&p.DashboardBody).Sub()
	if !ok {
		t.Fatalf("DashboardBody is %s, want !Sub of a JSON document", infra.ExprOf(&p.DashboardBody))
	}
	var unknown []string
	resolved := placeholder.ReplaceAllStringFunc(body, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		id, att, _ := strings.Cut(name, ".")
		_, isParam := tpl.Parameters[id]
		_, isRes := tpl.Resources[id]
		if !strings.HasPrefix(id, "AWS::") && !isParam && !isRes {
			unknown = append(unknown, name)
		}
		return fmt.Sprintf("resolved-%s-%s", strings.ReplaceAll(id, ":", ""), att)
	})
	if len(unknown) > 0 {
		t.Errorf("placeholders naming nothing in the template: %v", unknown)
	}
	var dash struct {
		Widgets []struct {
			Type       string `json:"type"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			Properties struct {
				Title   string            `json:"title"`
				Region  string            `json:"region"`
				Metrics []json.RawMessage `json:"metrics"`
				Alarms  []string          `json:"alarms"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(resolved), &dash); err != nil {
		t.Fatalf("dashboard body is not valid JSON after substitution: %v", err)
	}
	if len(dash.Widgets) < 6 {
		t.Fatalf("%d widgets", len(dash.Widgets))
	}
	onBoard := map[string]bool{}
	var alarms []string
	for i, w := range dash.Widgets {
		if w.Width < 1 || w.Width > 24 || w.Height < 1 {
			t.Errorf("widget %d (%s): size %dx%d", i, w.Properties.Title, w.Width, w.Height)
		}
		switch w.Type {
		case "alarm":
			alarms = append(alarms, w.Properties.Alarms...)
		case "metric":
			if w.Properties.Region != "resolved-AWSRegion-" {
				t.Errorf("widget %q: region %q, want ${AWS::Region}", w.Properties.Title, w.Properties.Region)
			}
			for _, raw := range w.Properties.Metrics {
				var line []any
				if err := json.Unmarshal(raw, &line); err != nil {
					t.Fatalf("widget %q: metric %s: %v", w.Properties.Title, raw, err)
				}
				// [namespace, name, (dimension name, value)*, {options}]
				opts, hasOpts := line[len(line)-1].(map[string]any)
				if !hasOpts || len(line)%2 != 1 || opts["stat"] == nil {
					t.Errorf("widget %q: metric %s: want [namespace, name, dimension pairs..., {stat}]", w.Properties.Title, raw)
					continue
				}
				ns, _ := line[0].(string)
				name, _ := line[1].(string)
				onBoard[ns+" "+name] = true
			}
		default:
			t.Errorf("widget %d: type %q", i, w.Type)
		}
	}
	for _, m := range []string{
		metrics.Namespace + " " + ingest.MetricReceived, metrics.Namespace + " " + ingest.MetricStoreFailure,
		metrics.Namespace + " " + ingest.MetricQueueFailure, metrics.Namespace + " " + ingest.MetricAckLatency,
		metrics.Namespace + " " + ingest.MetricRefused, metrics.Namespace + " " + ingest.MetricCapped,
		metrics.Namespace + " " + assemble.MetricNoData, metrics.Namespace + " " + assemble.MetricInvalid,
		metrics.Namespace + " " + upload.MetricAccepted, metrics.Namespace + " " + upload.MetricOnTime,
		metrics.Namespace + " " + upload.MetricLate, metrics.Namespace + " " + upload.MetricFailed,
		metrics.Namespace + " " + upload.MetricRejected, metrics.Namespace + " " + upload.MetricEndToEndLatency,
		bridge.HeartbeatNamespace + " " + bridge.HeartbeatMetric, bridge.HeartbeatNamespace + " " + bridge.HealthySignersMetric,
		"AWS/SQS ApproximateNumberOfMessagesVisible", "AWS/Lambda Errors", "AWS/Lambda Throttles",
	} {
		if !onBoard[m] {
			t.Errorf("metric %s is not on the dashboard", m)
		}
	}
	for _, id := range tpl.IDs(infra.TypeAlarm) {
		if !slices.Contains(alarms, "resolved-"+id+"-Arn") {
			t.Errorf("alarm %s is not on the dashboard's alarm widget", id)
		}
	}
}
