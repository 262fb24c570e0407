package config

import (
	"fmt"
	"os"
	"strings"
)

// Environment variables of the notify function (template parameters
// NotifySecretArn and NotifyDocsBaseUrl).
const (
	// EnvNotifySecretARN is the ARN of the secret holding the robots, or
	// "none".
	EnvNotifySecretARN = "NOTIFY_SECRET_ARN"
	// EnvNotifyDocsBaseURL is the folder of the documentation the
	// messages link to.
	EnvNotifyDocsBaseURL = "NOTIFY_DOCS_BASE_URL"
)

// Notify holds the notify function's settings.
type Notify struct {
	// SecretARN is the secret holding the robots; empty when there is none.
	SecretARN string
	// DocsBaseURL is where the runbook links point; empty for the default.
	DocsBaseURL string
}

// NotifyFromEnv reads the notify settings through getenv (os.Getenv when
// nil). "none" or nothing means no robots.
func NotifyFromEnv(getenv func(string) string) (Notify, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	n := Notify{SecretARN: strings.TrimSpace(getenv(EnvNotifySecretARN)), DocsBaseURL: strings.TrimSpace(getenv(EnvNotifyDocsBaseURL))}
	if n.SecretARN == "none" {
		n.SecretARN = ""
	}
	if n.SecretARN != "" && !strings.HasPrefix(n.SecretARN, "arn:") {
		return n, fmt.Errorf("config: %s must be an ARN or none", EnvNotifySecretARN)
	}
	return n, nil
}
