// Command assemble is the Lambda function behind the assemble queue: for
// each customs request it builds the exact payment data to upload, stores it
// as the session's pending upload and queues a sign job (package
// internal/assemble).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/wiring"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "assemble",
		config.EnvRequestsTable, config.EnvPaymentsTable, config.EnvSignQueueURL, config.EnvAssembleQueueURL)
	if err != nil {
		fn.Exit("start", err)
	}
	h, _ := wiring.Assemble(fn)
	lambda.Start(h.Handle)
}
