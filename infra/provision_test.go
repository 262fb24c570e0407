package infra_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/dev/awstest"
)

// wantNotReported are the template settings the embedded emulator cannot
// report back; anything else missing from its answers is a failure.
var wantNotReported = map[string]bool{
	"AssembleDeadLetterQueue.SqsManagedSseEnabled":   true,
	"AssembleQueue.SqsManagedSseEnabled":             true,
	"NotifyDeadLetterQueue.SqsManagedSseEnabled":     true,
	"NotifyQueue.SqsManagedSseEnabled":               true,
	"SignDeadLetterQueue.SqsManagedSseEnabled":       true,
	"SignQueue.SqsManagedSseEnabled":                 true,
	"PaymentsTable.PointInTimeRecoverySpecification": true,
	"RequestsTable.PointInTimeRecoverySpecification": true,
}

func TestProvisionMatchesTemplate(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	tpl := loadTemplate(t)
	ctx := context.Background()

	stack, err := infra.Provision(ctx, tpl, env.Clients, infra.Options{Prefix: env.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	if len(stack.Tables) != len(tpl.IDs(infra.TypeTable)) || len(stack.Queues) != len(tpl.IDs(infra.TypeQueue)) {
		t.Fatalf("provisioned %v %v", stack.Tables, stack.Queues)
	}
	report, err := infra.Verify(ctx, stack, env.Clients)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range report.Differences {
		t.Errorf("differs from template: %s", d)
	}
	for _, n := range report.NotReported {
		if !wantNotReported[n] {
			t.Errorf("not reported by the emulator: %s", n)
		}
	}
	if len(report.NotReported) > 0 {
		t.Logf("settings the emulator does not report: %s", strings.Join(report.NotReported, ", "))
	}

	// Running again against the same state keeps the resources.
	again, err := infra.Provision(ctx, tpl, env.Clients, infra.Options{Prefix: env.Prefix})
	if err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	for id, url := range stack.Queues {
		if again.Queues[id] != url {
			t.Errorf("second Provision: queue %s %s, first %s", id, again.Queues[id], url)
		}
	}
}

func TestVerifyDetectsDrift(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		drift func(t *testing.T, env *awstest.Env)
		want  string
	}{
		{"ok untouched", func(*testing.T, *awstest.Env) {}, ""},
		{"fail visibility timeout changed", func(t *testing.T, env *awstest.Env) {
			setQueueAttribute(t, env, "SignQueue", "VisibilityTimeout", "300")
		}, "SignQueue: VisibilityTimeout = 300, template 60"},
		{"fail redrive removed", func(t *testing.T, env *awstest.Env) {
			setQueueAttribute(t, env, "AssembleQueue", "RedrivePolicy", "")
		}, "AssembleQueue: has no RedrivePolicy"},
		{"fail redrive count changed", func(t *testing.T, env *awstest.Env) {
			setQueueAttribute(t, env, "AssembleQueue", "RedrivePolicy",
				`{"deadLetterTargetArn":"`+env.Stack.QueueARNs["AssembleDeadLetterQueue"]+`","maxReceiveCount":9}`)
		}, "AssembleQueue: maxReceiveCount 9, template 20"},
		{"fail table missing from stack", func(_ *testing.T, env *awstest.Env) {
			delete(env.Stack.Tables, "PaymentsTable")
		}, "PaymentsTable: not provisioned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := awstest.New(t)
			tc.drift(t, env)
			report, err := infra.Verify(context.Background(), env.Stack, env.Clients)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(report.Differences, "\n")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("differences:\n%s\nwant %q", got, tc.want)
			}
		})
	}
}

func TestProvisionRefusesChangedTable(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	tpl := loadTemplate(t)
	changed, err := infra.Parse([]byte(strings.Replace(mustRead(t), "AttributeName: pk, KeyType: HASH", "AttributeName: orderNo, KeyType: HASH", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := infra.Provision(context.Background(), tpl, env.Clients, infra.Options{Prefix: env.Prefix}); err != nil {
		t.Fatalf("same template again: %v", err)
	}
	_, err = infra.Provision(context.Background(), changed, env.Clients, infra.Options{Prefix: env.Prefix})
	if err == nil || !strings.Contains(err.Error(), "differs from the template") {
		t.Fatalf("Provision with a changed key = %v, want a difference error", err)
	}
}

func TestParameterValues(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	tests := []struct {
		name      string
		overrides map[string]string
		wantErr   string
	}{
		{"ok defaults", nil, ""},
		{"ok production endpoint", map[string]string{"CustomsUploadUrl": "https://customs.chinaport.gov.cn/ceb2grab/grab/realTimeDataUpload"}, ""},
		{"fail retention below three years", map[string]string{"RetentionDays": "365"}, "below"},
		{"fail retention not a number", map[string]string{"RetentionDays": "3y"}, "not a number"},
		{"fail unknown parameter", map[string]string{"Nope": "1"}, "not in the template"},
		{"ok optional parameter left empty", map[string]string{"CustomsSourceCidrs": ""}, ""},
		{"fail required parameter emptied", map[string]string{"CustomsUploadUrl": ""}, "has no value"},
		{"fail number emptied", map[string]string{"OrderDailyCap": ""}, "has no value"},
		{"fail daily cap below 1", map[string]string{"OrderDailyCap": "0"}, "below"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tpl.ParameterValues(tc.overrides)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// setQueueAttribute changes one attribute of a provisioned queue.
func setQueueAttribute(t *testing.T, env *awstest.Env, id, name, value string) {
	t.Helper()
	_, err := env.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(env.Queue(id)),
		Attributes: map[string]string{name: value},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mustRead returns the text of template.yaml.
func mustRead(t *testing.T) string {
	t.Helper()
	tpl := loadTemplate(t)
	b, err := readFile(tpl.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
