// Command settle is the Lambda function the EventBridge schedule runs every
// minute: it settles requests that would otherwise be stranded, and counts
// the declared orders still without a payment record (package
// internal/settle).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/wiring"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "settle",
		config.EnvRequestsTable, config.EnvAssembleQueueURL, config.EnvSignQueueURL, config.EnvSignDLQURL)
	if err != nil {
		fn.Exit("start", err)
	}
	s, _, _ := wiring.Settle(fn)
	lambda.Start(s.Handle)
}
