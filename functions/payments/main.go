// Command payments is the Lambda function behind POST /payments and POST
// /orders (IAM authorization): platforms written in any language record
// their payments, one or a batch, and declare their orders through it
// (package internal/paymentsapi).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/apigw"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/paymentsapi"
	"github.com/ceb179/ceb179/records"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "payments", config.EnvPaymentsTable)
	if err != nil {
		fn.Exit("start", err)
	}
	store := dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Payments: fn.Config.PaymentsTable}, fn.Config.Retention)
	lambda.Start(apigw.New(paymentsapi.NewHandler(records.NewRecorder(store), store, fn.Log)).Handle)
}
