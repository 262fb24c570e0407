// Command assemble is the Lambda function behind the assemble queue: for
// each customs request it builds the exact payment data to upload, stores it
// as the session's pending upload and queues a sign job (package
// internal/assemble).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ceb179/ceb179/internal/assemble"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/queue"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := config.FromEnv(nil, config.EnvRequestsTable, config.EnvPaymentsTable, config.EnvSignQueueURL, config.EnvAssembleQueueURL)
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
	h := assemble.New(store, store, queue.New(clients.SQS, cfg.SignQueueURL),
		assemble.WithVisibility(queue.New(clients.SQS, cfg.AssembleQueueURL)),
		assemble.WithLogger(log),
		assemble.WithMetrics(metrics.New("assemble", os.Stdout)))
	lambda.Start(h.Handle)
}
