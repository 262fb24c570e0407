// Command notify is the Lambda function the alarm topic feeds through the
// notify queue: it posts each batch of alarm changes to the group robots
// (DingTalk, Feishu/Lark, WeCom) kept in the NotifySecretArn secret
// (package internal/notify).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/wiring"
)

func main() {
	fn, err := config.LoadFunction(context.Background(), nil, "notify", config.EnvSignDLQURL)
	if err != nil {
		fn.Exit("start", err)
	}
	nc, err := config.NotifyFromEnv(nil)
	if err != nil {
		fn.Exit("start", err)
	}
	n, _, err := wiring.Notify(fn, nc)
	if err != nil {
		fn.Exit("start", err)
	}
	lambda.Start(n.Handle)
}
