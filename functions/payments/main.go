// Command payments is the Lambda function behind POST /payments (IAM
// authorization): platforms written in other languages record their
// payments through it (package internal/records).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/apigw"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/records"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "payments", config.EnvPaymentsTable)
	if err != nil {
		fn.Exit("start", err)
	}
	store := dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Payments: fn.Config.PaymentsTable}, fn.Config.Retention)
	lambda.Start(apigw.New(records.NewHandler(records.NewRecorder(store), fn.Log)).Handle)
}
