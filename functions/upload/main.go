// Command upload is the Lambda function that hsmbridge invokes: op
// "source" hands out the exact sign source of a session, op "upload" checks
// the signature and posts the signed data to customs (see package upload
// and docs/architecture.md).
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/upload"
)

// certTTL is how long a registered certificate is used before it is read again.
const certTTL = 5 * time.Minute

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := config.FromEnv(nil, config.EnvRequestsTable, config.EnvPaymentsTable, config.EnvCustomsUploadURL)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	opt, err := config.UploadFromEnv(nil)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	copts := []customsapi.Option{customsapi.WithCAFile(opt.CAFile)}
	if opt.Timeout > 0 {
		copts = append(copts, customsapi.WithTimeout(opt.Timeout))
	}
	customs, err := customsapi.New(cfg.CustomsUploadURL, copts...)
	if err != nil {
		log.Error("customs client", slog.String("error", err.Error()))
		os.Exit(1)
	}
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		log.Error("aws clients", slog.String("error", err.Error()))
		os.Exit(1)
	}
	store := dynamo.New(clients.DynamoDB, dynamo.Tables{Requests: cfg.RequestsTable, Payments: cfg.PaymentsTable}, cfg.Retention)
	policy := upload.DefaultPolicy()
	if opt.GiveUpAfter > 0 {
		policy.GiveUpAfter = opt.GiveUpAfter
	}
	h := upload.New(store, upload.NewCertCache(store, certTTL), customs,
		upload.WithPolicy(policy), upload.WithLogger(log), upload.WithMetrics(metrics.New("upload", os.Stdout)))
	lambda.Start(h.Invoke)
}
