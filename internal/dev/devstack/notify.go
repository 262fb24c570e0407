package devstack

import (
	"context"
	"fmt"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dev/alarmeval"
	"github.com/ceb179/ceb179/internal/dev/emulator"
	"github.com/ceb179/ceb179/internal/dev/eventsource"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/secret"
	"github.com/ceb179/ceb179/internal/wiring"
)

// The local stack's alarms, with Options.Notify: template.yaml's alarms
// are evaluated over the metrics the local components emit (package
// alarmeval), each change is put on the notify queue as the alarm topic's
// raw subscription would put it, and the notify function's code (package
// notify) takes it from there, fed like Lambda's event source mapping with
// the template's concurrency, reading the robots from a secret in the
// emulator's Secrets Manager.

// localHeartbeat is how often the local hsmbridge sends its heartbeat to
// the local alarms.
const localHeartbeat = 10 * time.Second

// notifySecretName is the name of the local robots' secret.
const notifySecretName = "notify-robots"

// startNotify stores the robots, starts the notify handler on the notify
// queue and the evaluation of the template's alarms.
func (s *Stack) startNotify(ctx context.Context, conn *emulator.Conn, o Options) error {
	if _, err := notify.ParseConfig(o.Notify); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	arn, err := secret.Put(ctx, awsenv.NewSecretsManager(conn.Config), o.Prefix+notifySecretName, o.Notify)
	if err != nil {
		return fmt.Errorf("local: robot secret: %w", err)
	}
	s.NotifySecretARN = arn
	// The robots' docsBaseUrl, when set, wins over the function's setting
	// (the template's NotifyDocsBaseUrl), as it does in AWS.
	n, st, err := wiring.Notify(s.function("notify"), config.Notify{SecretARN: arn})
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	s.Functions["notify"] = st
	notifyQ := queue.New(conn.Clients.SQS, s.aws.Queues["NotifyQueue"])
	s.run(s.runCtx, (&eventsource.Poller{
		Queue: notifyQ, ARN: s.aws.QueueARNs["NotifyQueue"], Region: Region, Handler: n.Handle,
		BatchSize: 10, ReportBatchItemFailures: true, Wait: 2 * time.Second, Concurrency: notify.MaxConcurrency, Timeout: time.Minute,
		Logger: s.log.With("component", "notify-events"),
	}).Run)

	alarms, skipped, err := alarmeval.Load(s.aws)
	if err != nil {
		return fmt.Errorf("local: alarms: %w", err)
	}
	s.Alarms, s.AlarmsSkipped = alarms, skipped
	queues := map[string]alarmeval.Depth{}
	for id, url := range s.aws.Queues {
		if name, err := s.aws.GetAtt(id, "QueueName"); err == nil {
			queues[name] = queue.New(conn.Clients.SQS, url)
		}
	}
	ev := &alarmeval.Evaluator{
		Alarms: alarms, Metrics: s.alarmMetrics, Queues: queues, Every: o.AlarmEvery,
		Raise: func(ctx context.Context, c notify.Change) error { return notifyQ.Send(ctx, notify.Payload(c)) },
		Log:   s.log.With("component", "alarms"),
	}
	s.run(s.runCtx, ev.Run)
	return nil
}

// runHeartbeat sends the local hsmbridge's heartbeat and urgent states to
// the local alarms while it runs, as hsmbridge sends them to CloudWatch.
func (s *Stack) runHeartbeat(ctx context.Context, b *bridge.Bridge) {
	if s.alarmMetrics == nil {
		return
	}
	hb := &bridge.Heartbeat{
		Sink: s.alarmMetrics, Interval: localHeartbeat, Watch: time.Second,
		Sample: func() bridge.Beat { return bridge.BeatOf(b.Status(), s.pinGuard, time.Now()) },
		Logger: s.log.With("component", "hsmbridge"),
	}
	s.wg.Go(func() { _ = hb.Run(ctx) })
}
