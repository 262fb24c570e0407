// Command upload is the Lambda function that hsmbridge invokes: op
// "source" hands out the exact sign source of a session, op "upload" checks
// the signature and posts the signed data to customs (see package upload
// and docs/architecture.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/wiring"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "upload",
		config.EnvRequestsTable, config.EnvPaymentsTable, config.EnvCustomsUploadURL)
	if err != nil {
		fn.Exit("start", err)
	}
	h, _, err := wiring.Upload(fn)
	if err != nil {
		fn.Exit("start", err)
	}
	lambda.Start(h.Invoke)
}
