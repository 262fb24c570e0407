// Command payments is the Lambda function behind POST /payments (IAM
// authorization): platforms written in other languages record their
// payments through it (package internal/records).
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
	"github.com/ceb179/ceb179/internal/records"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := config.FromEnv(nil, config.EnvPaymentsTable)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		log.Error("aws clients", slog.String("error", err.Error()))
		os.Exit(1)
	}
	store := dynamo.New(clients.DynamoDB, dynamo.Tables{Payments: cfg.PaymentsTable}, cfg.Retention)
	lambda.Start(apigw.New(records.NewHandler(records.NewRecorder(store), log)).Handle)
}
