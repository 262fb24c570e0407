package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/notify/robottest"
	"github.com/ceb179/ceb179/internal/queue"
)

// TestEntryPoint runs the built function the way Lambda runs it, fed by
// its event source, with its robots in a Secrets Manager secret, and
// drives it the way production does: CloudWatch (the emulator's) sets the
// template's sign-DLQ alarm to ALARM and back to OK, the alarm topic
// delivers each change raw to the notify queue. Each kind of robot gets
// one message for each, signed as its vendor documents, with the runbook
// link and the ebpCode of the dead-lettered jobs; a robot answering
// errcode 310000 is tried notify.Attempts times and counted in the
// function's metrics, and the others still get theirs.
func TestEntryPoint(t *testing.T) {
	env := awstest.New(t)
	ctx := t.Context()
	dlq := queue.New(env.SQS, env.Queue("SignDeadLetterQueue"))
	if err := dlq.Send(ctx, ceb179.SignJob{SessionID: "s-1", EbpCode: "3301964J31", Deadline: time.Now().UnixMilli(), Digest: "d"}); err != nil {
		t.Fatal(err)
	}
	ding := robottest.New(t, robottest.DingTalk, robottest.WithSecret("SECding"))
	lark := robottest.New(t, robottest.Feishu, robottest.WithSecret("larksecret"))
	wecom := robottest.New(t, robottest.WeCom)
	broken := robottest.New(t, robottest.WeCom)
	broken.FailNext(100, `{"errcode":310000,"errmsg":"sign not match"}`)
	cfg, err := json.Marshal(notify.Config{Robots: []notify.RobotConfig{
		{Name: "ding", Type: notify.DingTalk, Webhook: ding.URL, Secret: ding.Secret},
		{Name: "lark", Type: notify.Feishu, Webhook: lark.URL, Secret: lark.Secret},
		{Name: "wecom", Type: notify.WeCom, Webhook: wecom.URL},
		{Name: "broken", Type: notify.WeCom, Webhook: broken.URL},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := awsenv.NewSecretsManager(env.Config).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(env.Prefix + "robots"), SecretString: aws.String(string(cfg))})
	if err != nil {
		t.Fatal(err)
	}
	fn := lambdatest.StartBinary(t, env, "NotifyFunction", lambdatest.WithEnv(map[string]string{
		"NOTIFY_SECRET_ARN": aws.ToString(sec.ARN), "NOTIFY_DOCS_BASE_URL": "https://docs.example/ceb179/docs/"}))
	fn.EnableEventSources(t)

	// The alarm topic, the notify queue's raw subscription, and the
	// template's sign-DLQ alarm notifying the topic.
	topics := sns.NewFromConfig(env.Config)
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(env.Prefix + "alarms")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topics.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(env.Stack.QueueARNs["NotifyQueue"]), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(env.Config)
	alarm := env.Prefix + "sign-dlq"
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(alarm), AlarmDescription: aws.String("Sign jobs were never completed and wait in the sign dead-letter queue. Runbook: docs/operations.md, sign-dlq."),
		Namespace: aws.String("AWS/SQS"), MetricName: aws.String("ApproximateNumberOfMessagesVisible"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(env.Prefix + "SignDeadLetterQueue")}},
		Statistic:  cwtypes.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(0),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, TreatMissingData: aws.String("notBreaching"),
		ActionsEnabled: aws.Bool(true), AlarmActions: []string{aws.ToString(topic.TopicArn)}, OKActions: []string{aws.ToString(topic.TopicArn)},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out\nlogs:\n%s", what, fn.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, state := range []cwtypes.StateValue{cwtypes.StateValueAlarm, cwtypes.StateValueOk} {
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(alarm), StateValue: state,
			StateReason: aws.String("Threshold Crossed: 1 out of the last 1 datapoints [1.0 (01/05/26 10:00:00)] was greater than the threshold (0.0).")}); err != nil {
			t.Fatal(err)
		}
		waitFor(fmt.Sprintf("message %d at every robot", i+1), func() bool {
			return len(ding.Accepted()) > i && len(lark.Accepted()) > i && len(wecom.Accepted()) > i && len(broken.Posts()) >= notify.Attempts*(i+1)
		})
	}
	time.Sleep(2 * time.Second) // anything more would be a duplicate
	link := "https://docs.example/ceb179/docs/operations.md#sign-dlq"
	for _, r := range []*robottest.Robot{ding, lark, wecom} {
		got := r.Accepted()
		if len(got) != 2 || len(r.Posts()) != 2 {
			t.Fatalf("%s: %d posts, %d accepted; want exactly one for the ALARM and one for the OK", r.Kind, len(r.Posts()), len(got))
		}
		for _, want := range []string{alarm, link, "ebpCode：3301964J31（1 个任务）", "→ ALARM"} {
			if !strings.Contains(got[0].Text, want) {
				t.Errorf("%s: ALARM message lacks %q:\n%s", r.Kind, want, got[0].Text)
			}
		}
		for _, want := range []string{alarm, link, "事件结束：ALARM → OK"} {
			if !strings.Contains(got[1].Text, want) {
				t.Errorf("%s: OK message lacks %q:\n%s", r.Kind, want, got[1].Text)
			}
		}
	}
	if n := len(broken.Posts()); n != 2*notify.Attempts {
		t.Errorf("broken robot: %d posts, want %d", n, 2*notify.Attempts)
	}
	logs := fn.Logs()
	if c := strings.Count(logs, `"AttemptFailed":1`); c != 2*notify.Attempts {
		t.Errorf("%d AttemptFailed metric lines, want %d", c, 2*notify.Attempts)
	}
	if c := strings.Count(logs, `"Failed":1`); c != 2 {
		t.Errorf("%d Failed metric lines, want 2:\n%s", c, logs)
	}
	for _, r := range []*robottest.Robot{ding, lark, wecom, broken} {
		if strings.Contains(logs, r.Token()) {
			t.Errorf("the function's log holds robot %s's token", r.Kind)
		}
	}
}
