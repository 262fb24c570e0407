// Command ingest is the Lambda function behind POST /platDataOpen (the
// load balancer's plain-http front door, or API Gateway): it records each
// customs request, queues it for assembly and answers customs at once.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ceb179/ceb179/internal/apigw"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ingest"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/queue"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := config.FromEnv(nil, config.EnvRequestsTable, config.EnvAssembleQueueURL)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		log.Error("aws clients", slog.String("error", err.Error()))
		os.Exit(1)
	}
	store := dynamo.New(clients.DynamoDB, dynamo.Tables{Requests: cfg.RequestsTable, Payments: cfg.PaymentsTable}, cfg.Retention)
	assemble := queue.New(clients.SQS, cfg.AssembleQueueURL)
	h := ingest.New(store, assemble, ingest.WithLogger(log), ingest.WithMetrics(metrics.New("ingest", os.Stdout)),
		ingest.WithDailyCap(store, cfg.OrderDailyCap), ingest.WithAllowlist(cfg.SourceAllowlist))
	lambda.Start(apigw.New(h).Handle)
}
