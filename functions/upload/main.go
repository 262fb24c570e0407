// Command upload is the upload Lambda function of ceb179. This is a placeholder
// that lets template.yaml build; it is replaced by the real wiring.
package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (json.RawMessage, error) {
		return nil, errors.New("not implemented")
	})
}
