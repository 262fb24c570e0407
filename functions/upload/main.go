// Command upload is the Lambda function that hsmbridge invokes: op
// "source" hands out the exact sign source of a session, op "upload" checks
// the signature and posts the signed data to customs (see package upload
// and docs/architecture.md).
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/upload"
)

// certTTL is how long a registered certificate is used before it is read again.
const certTTL = 5 * time.Minute

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "upload",
		config.EnvRequestsTable, config.EnvPaymentsTable, config.EnvCustomsUploadURL)
	if err != nil {
		fn.Exit("start", err)
	}
	copts := []customsapi.Option{customsapi.WithCAFile(fn.Upload.CAFile)}
	if fn.Upload.Timeout > 0 {
		copts = append(copts, customsapi.WithTimeout(fn.Upload.Timeout))
	}
	customs, err := customsapi.New(fn.Config.CustomsUploadURL, copts...)
	if err != nil {
		fn.Exit("customs client", err)
	}
	store := dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Requests: fn.Config.RequestsTable, Payments: fn.Config.PaymentsTable}, fn.Config.Retention)
	policy := upload.DefaultPolicy()
	if fn.Upload.GiveUpAfter > 0 {
		policy.GiveUpAfter = fn.Upload.GiveUpAfter
	}
	h := upload.New(store, upload.NewCertCache(store, certTTL), customs,
		upload.WithPolicy(policy), upload.WithLogger(fn.Log), upload.WithMetrics(fn.Metrics()))
	lambda.Start(h.Invoke)
}
