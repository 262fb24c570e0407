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
	"github.com/ceb179/ceb179/internal/wiring"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "payments", config.EnvPaymentsTable)
	if err != nil {
		fn.Exit("start", err)
	}
	h, _ := wiring.Payments(fn)
	lambda.Start(apigw.New(h).Handle)
}
