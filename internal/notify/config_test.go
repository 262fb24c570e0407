package notify_test

import (
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/notify"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	const token = "SECRETTOKEN123"
	for _, tc := range []struct {
		name, in, wantErr string
		robots            int
	}{
		{"ok three robots in JSON", `{"robots":[
			{"name":"d","type":"dingtalk","webhook":"https://oapi.dingtalk.com/robot/send?access_token=` + token + `","secret":"SECx"},
			{"name":"f","type":"lark","webhook":"https://open.larksuite.com/open-apis/bot/v2/hook/` + token + `"},
			{"name":"w","type":"wecom","webhook":"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=` + token + `"}]}`, "", 3},
		{"ok YAML, loopback http", "robots:\n  - {name: d, type: dingtalk, webhook: 'http://127.0.0.1:8/robot/send?access_token=x'}\n", "", 1},
		{"ok no robots", `{"robots":[]}`, "", 0},
		{"fail plain http elsewhere", `{"robots":[{"name":"d","type":"dingtalk","webhook":"http://oapi.dingtalk.com/robot/send?access_token=` + token + `"}]}`, "must be https", 0},
		{"fail unknown type", `{"robots":[{"name":"d","type":"slack","webhook":"https://x/` + token + `"}]}`, "type must be", 0},
		{"fail name twice", `{"robots":[{"name":"d","type":"wecom","webhook":"https://x/a"},{"name":"d","type":"wecom","webhook":"https://x/b"}]}`, "name used twice", 0},
		{"fail wecom with a secret", `{"robots":[{"name":"w","type":"wecom","webhook":"https://x/a","secret":"s"}]}`, "no signing secret", 0},
		{"fail unknown key", `{"robots":[{"name":"d","type":"wecom","webhook":"https://x/a","token":"` + token + `"}]}`, "not found", 0},
		{"fail not JSON or YAML", `{"robots": [` + token, "notify config", 0},
		{"fail no webhook", `{"robots":[{"name":"d","type":"dingtalk"}]}`, "webhook is required", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := notify.ParseConfig([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Fatalf("error quotes the webhook's token: %v", err)
				}
				return
			}
			if err != nil || len(c.Robots) != tc.robots {
				t.Fatalf("ParseConfig = %+v, %v; want %d robots", c, err, tc.robots)
			}
		})
	}
}

func TestParseChange(t *testing.T) {
	t.Parallel()
	raw := `{"AlarmName":"prod-sign-dlq","AlarmDescription":"x. Runbook: docs/operations.md, sign-dlq.","AWSAccountId":"1","NewStateValue":"ALARM",` +
		`"NewStateReason":"Threshold Crossed: 1 out of the last 1 datapoints [4.0 (13/05/24 10:00:00)] was greater than the threshold (0.0)",` +
		`"StateChangeTime":"2024-05-13T10:01:23.456+0000","Region":"China (Beijing)","OldStateValue":"OK",` +
		`"Trigger":{"MetricName":"ApproximateNumberOfMessagesVisible","Namespace":"AWS/SQS","StatisticType":"Statistic","Statistic":"MAXIMUM","Unit":null,` +
		`"Dimensions":[{"value":"prod-SignDLQ","name":"QueueName"}],"Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0.0,"TreatMissingData":"notBreaching"}}`
	envelope := `{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:cn-north-1:1:t","Message":` + quote(raw) + `}`
	for _, tc := range []struct {
		name, body string
		fail       bool
	}{
		{"ok raw delivery", raw, false},
		{"ok SNS envelope", envelope, false},
		{"fail not JSON", "hello", true},
		{"fail another notification", `{"Type":"Notification","Message":"{\"Records\":[]}"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := notify.ParseChange(tc.body)
			if tc.fail {
				if err == nil {
					t.Fatalf("ParseChange = %+v, want an error", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "prod-sign-dlq" || c.State != "ALARM" || c.OldState != "OK" || c.Runbook != "sign-dlq" || c.Value == nil || *c.Value != 4 ||
				c.At.UTC().Format("15:04:05") != "10:01:23" || len(c.Dimensions) != 1 || c.Dimensions[0] != "QueueName=prod-SignDLQ" {
				t.Fatalf("ParseChange = %+v", c)
			}
		})
	}
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
