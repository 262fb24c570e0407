// Command ingest is the Lambda function behind POST /platDataOpen (the
// load balancer's plain-http front door, or API Gateway): it records each
// customs request, queues it for assembly and answers customs at once.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/apigw"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/wiring"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "ingest", config.EnvRequestsTable, config.EnvAssembleQueueURL)
	if err != nil {
		fn.Exit("start", err)
	}
	h, _ := wiring.Ingest(fn)
	lambda.Start(apigw.New(h).Handle)
}
