// Command notify is the Lambda function the alarm topic feeds through the
// notify queue: it posts each batch of alarm changes to the group robots
// (DingTalk, Feishu/Lark, WeCom) kept in the NotifySecretArn secret
// (package internal/notify).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/secret"
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
	var src notify.ConfigSource = notify.NoRobots
	if nc.SecretARN != "" {
		if src, err = secret.New(awsenv.NewSecretsManager(fn.AWS.Config), awsenv.NewSSM(fn.AWS.Config), nc.SecretARN, secret.DefaultTTL); err != nil {
			fn.Exit("robot secret", err)
		}
	}
	n := notify.New(src, notify.WithDocsBaseURL(nc.DocsBaseURL), notify.WithSignDeadLetters(queue.New(fn.AWS.SQS, fn.Config.SignDLQURL)),
		notify.WithLogger(fn.Log), notify.WithMetrics(fn.Metrics()))
	lambda.Start(n.Handle)
}
