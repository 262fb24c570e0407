// Command settle is the Lambda function the EventBridge schedule runs every
// minute: it settles requests that would otherwise be stranded, and counts
// the declared orders still without a payment record (package
// internal/settle).
package main

import (
	"cmp"
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/settle"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "settle",
		config.EnvRequestsTable, config.EnvAssembleQueueURL, config.EnvSignQueueURL, config.EnvSignDLQURL)
	if err != nil {
		fn.Exit("start", err)
	}
	cfg, sqs := fn.Config, fn.AWS.SQS
	store := dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Requests: cfg.RequestsTable, Payments: cfg.PaymentsTable}, cfg.Retention)
	rec := fn.Metrics()
	opts := []settle.Option{settle.WithLogger(fn.Log), settle.WithMetrics(rec)}
	if cfg.PaymentsTable != "" {
		opts = append(opts, settle.WithMissing(settle.NewMissing(store, fn.Log, rec, settle.WithGrace(cmp.Or(cfg.MissingGrace, settle.DefaultMissingGrace)))))
	}
	if fn.Upload.GiveUpAfter > 0 {
		opts = append(opts, settle.WithGiveUp(fn.Upload.GiveUpAfter))
	}
	s := settle.New(store, queue.New(sqs, cfg.AssembleQueueURL), queue.New(sqs, cfg.SignQueueURL), queue.New(sqs, cfg.SignDLQURL), opts...)
	lambda.Start(s.Handle)
}
