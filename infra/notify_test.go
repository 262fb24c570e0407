package infra_test

import (
	"slices"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/notify"
)

// TestTemplateNotify checks the group robots' wiring: the notify queue is
// subscribed raw to the alarm topic and only the topic may send to it; the
// function reads it with the concurrency its pacing is computed for; its
// role can read the one secret of NotifySecretArn, and nothing else in the
// template can read a secret.
func TestTemplateNotify(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)

	t.Run("ok raw subscription of the notify queue to the alarm topic", func(t *testing.T) {
		r := tpl.Resources["NotifySubscription"]
		if r.Type != infra.TypeSubscription || r.Condition != "" {
			t.Fatalf("NotifySubscription %s (condition %q), want an unconditional SNS subscription", r.Type, r.Condition)
		}
		var p struct {
			TopicArn           yaml.Node `yaml:"TopicArn"`
			Protocol           string    `yaml:"Protocol"`
			Endpoint           yaml.Node `yaml:"Endpoint"`
			RawMessageDelivery bool      `yaml:"RawMessageDelivery"`
		}
		if err := r.Properties.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ref, _ := infra.ExprOf(&p.TopicArn).Ref()
		id, att, _ := infra.ExprOf(&p.Endpoint).GetAtt()
		if ref != "AlarmTopic" || p.Protocol != "sqs" || id != "NotifyQueue" || att != "Arn" || !p.RawMessageDelivery {
			t.Errorf("subscription %s %s %s.%s raw=%v", infra.ExprOf(&p.TopicArn), p.Protocol, id, att, p.RawMessageDelivery)
		}
	})

	t.Run("ok only the alarm topic sends to the notify queue", func(t *testing.T) {
		pol := tpl.Resources["NotifyQueuePolicy"].Properties
		if q := at(pol, "Queues", 0); q == nil || refOf(q) != "NotifyQueue" {
			t.Fatalf("NotifyQueuePolicy queues %v", infra.ExprOf(at(pol, "Queues")))
		}
		st := at(pol, "PolicyDocument", "Statement")
		if st == nil || len(st.Content) != 1 {
			t.Fatalf("want one statement, got %v", infra.ExprOf(st))
		}
		s := st.Content[0]
		if value(s, "Principal", "Service") != "sns.amazonaws.com" || value(s, "Action") != "sqs:SendMessage" ||
			refOf(at(s, "Condition", "ArnEquals", "aws:SourceArn")) != "AlarmTopic" {
			t.Errorf("statement %v, want sns.amazonaws.com sqs:SendMessage only from AlarmTopic", infra.ExprOf(s))
		}
	})

	t.Run("ok event source: the notify queue, at most notify.MaxConcurrency at once", func(t *testing.T) {
		fns, err := tpl.Functions()
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(fns, func(f infra.FunctionSpec) bool { return f.LogicalID == "NotifyFunction" })
		if i < 0 {
			t.Fatal("no NotifyFunction")
		}
		ev, ok := fns[i].Events["AlarmChanges"]
		if id, _, _ := ev.Queue.GetAtt(); !ok || len(fns[i].Events) != 1 || ev.Type != "SQS" || id != "NotifyQueue" ||
			!slices.Equal(ev.FunctionResponseTypes, []string{"ReportBatchItemFailures"}) || ev.BatchSize < 1 || ev.BatchSize > 10 {
			t.Fatalf("notify events %+v", fns[i].Events)
		}
		mc := value(tpl.Resources["NotifyFunction"].Properties, "Events", "AlarmChanges", "Properties", "ScalingConfig", "MaximumConcurrency")
		if n, err := strconv.Atoi(mc); err != nil || n != notify.MaxConcurrency {
			t.Errorf("MaximumConcurrency %q, want notify.MaxConcurrency = %d: the pacing of each invocation assumes it", mc, notify.MaxConcurrency)
		}
		if fns[i].Timeout < 30 {
			t.Errorf("notify timeout %d s: too short for %d paced attempts per robot", fns[i].Timeout, notify.Attempts)
		}
	})

	t.Run("ok the role reads that one secret, only when there is one", func(t *testing.T) {
		p := tpl.Parameters["NotifySecretArn"]
		if p.Type != "String" || p.Default != "none" {
			t.Errorf("NotifySecretArn %+v, want String defaulting to none", p)
		}
		r := tpl.Resources["NotifySecretPolicy"]
		if r.Type != infra.TypeRolePolicy || r.Condition != "HasNotifySecret" || refOf(at(r.Properties, "RoleName")) != "NotifyRole" {
			t.Fatalf("NotifySecretPolicy %s condition %q role %v", r.Type, r.Condition, infra.ExprOf(at(r.Properties, "RoleName")))
		}
		stmts, err := tpl.Statements()
		if err != nil {
			t.Fatal(err)
		}
		var secretStmts []infra.Statement
		for _, s := range stmts {
			for _, a := range s.Actions {
				if service(a) == "secretsmanager" || service(a) == "ssm" || service(a) == "kms" {
					secretStmts = append(secretStmts, s)
					break
				}
			}
		}
		if len(secretStmts) != 1 {
			t.Fatalf("statements reading secrets: %+v, want the one of NotifySecretPolicy", secretStmts)
		}
		s := secretStmts[0]
		if s.Owner != "NotifyRole" || !slices.Equal(s.Actions, []string{"secretsmanager:GetSecretValue", "ssm:GetParameter"}) ||
			len(s.Resources) != 1 {
			t.Fatalf("secret statement %+v", s)
		}
		if ref, ok := s.Resources[0].Ref(); !ok || ref != "NotifySecretArn" {
			t.Errorf("secret statement resource %s, want !Ref NotifySecretArn", s.Resources[0])
		}
	})
}

// refOf returns what a !Ref node names, or "".
func refOf(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	ref, _ := infra.ExprOf(n).Ref()
	return ref
}

// service returns the service prefix of an IAM action.
func service(action string) string {
	for i := range action {
		if action[i] == ':' {
			return action[:i]
		}
	}
	return action
}
