// Command ingest is the Lambda function behind POST /platDataOpen (the
// load balancer's plain-http front door, or API Gateway): it records each
// customs request, queues it for assembly and answers customs at once.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/apigw"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ingest"
	"github.com/ceb179/ceb179/internal/queue"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "ingest", config.EnvRequestsTable, config.EnvAssembleQueueURL)
	if err != nil {
		fn.Exit("start", err)
	}
	cfg := fn.Config
	store := dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Requests: cfg.RequestsTable, Payments: cfg.PaymentsTable}, cfg.Retention)
	h := ingest.New(store, queue.New(fn.AWS.SQS, cfg.AssembleQueueURL),
		ingest.WithLogger(fn.Log), ingest.WithMetrics(fn.Metrics()),
		ingest.WithDailyCap(store, cfg.OrderDailyCap), ingest.WithAllowlist(cfg.SourceAllowlist))
	lambda.Start(apigw.New(h).Handle)
}
