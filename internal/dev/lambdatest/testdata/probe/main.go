// Command probe is a Lambda function for the tests of package lambdatest:
// it reports what the runtime gave it and can fail in each way a function
// can.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// request selects what the probe does.
type request struct {
	Op    string `json:"op"`
	Name  string `json:"name"`
	Sleep int    `json:"sleepMs"`
}

// answer is what the probe reports.
type answer struct {
	Op          string `json:"op"`
	Value       string `json:"value"`
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	RemainingMs int64  `json:"remainingMs"`
	PID         int    `json:"pid"`
}

func handle(ctx context.Context, r request) (answer, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	a := answer{Op: r.Op, PID: os.Getpid(), RemainingMs: time.Until(deadline).Milliseconds()}
	if lc != nil {
		a.RequestID, a.FunctionARN = lc.AwsRequestID, lc.InvokedFunctionArn
	}
	switch r.Op {
	case "env":
		a.Value = os.Getenv(r.Name)
	case "sleep":
		time.Sleep(time.Duration(r.Sleep) * time.Millisecond)
	case "error":
		return a, errors.New("probe failed")
	case "panic":
		panic("probe panicked")
	case "exit":
		os.Exit(3)
	}
	return a, nil
}

func main() {
	lambda.Start(handle)
}
