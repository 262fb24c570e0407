// Command settle is the Lambda function the EventBridge schedule runs every
// minute: it settles requests that would otherwise be stranded (package
// internal/settle).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/settle"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := config.FromEnv(nil, config.EnvRequestsTable, config.EnvAssembleQueueURL, config.EnvSignQueueURL, config.EnvSignDLQURL)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	up, err := config.UploadFromEnv(nil)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		log.Error("aws clients", slog.String("error", err.Error()))
		os.Exit(1)
	}
	store := dynamo.New(clients.DynamoDB, dynamo.Tables{Requests: cfg.RequestsTable}, cfg.Retention)
	opts := []settle.Option{settle.WithLogger(log), settle.WithMetrics(metrics.New("settle", os.Stdout))}
	if up.GiveUpAfter > 0 {
		opts = append(opts, settle.WithGiveUp(up.GiveUpAfter))
	}
	s := settle.New(store, queue.New(clients.SQS, cfg.AssembleQueueURL), queue.New(clients.SQS, cfg.SignQueueURL),
		queue.New(clients.SQS, cfg.SignDLQURL), opts...)
	lambda.Start(s.Handle)
}
