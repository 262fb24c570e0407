// Command assemble is the Lambda function behind the assemble queue: for
// each customs request it builds the exact payment data to upload, stores it
// as the session's pending upload and queues a sign job (package
// internal/assemble).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/assemble"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/queue"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "assemble",
		config.EnvRequestsTable, config.EnvPaymentsTable, config.EnvSignQueueURL, config.EnvAssembleQueueURL)
	if err != nil {
		fn.Exit("start", err)
	}
	cfg, sqs := fn.Config, fn.AWS.SQS
	store := dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Requests: cfg.RequestsTable, Payments: cfg.PaymentsTable}, cfg.Retention)
	h := assemble.New(store, store, queue.New(sqs, cfg.SignQueueURL),
		assemble.WithVisibility(queue.New(sqs, cfg.AssembleQueueURL)),
		assemble.WithLogger(fn.Log), assemble.WithMetrics(fn.Metrics()))
	lambda.Start(h.Handle)
}
