// Package config holds the settings the functions read from their
// environment, with the variable names template.yaml sets.
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variable names set by template.yaml.
const (
	EnvRequestsTable    = "REQUESTS_TABLE"
	EnvPaymentsTable    = "PAYMENTS_TABLE"
	EnvAssembleQueueURL = "ASSEMBLE_QUEUE_URL"
	EnvSignQueueURL     = "SIGN_QUEUE_URL"
	EnvSignDLQURL       = "SIGN_DLQ_URL"
	EnvUploadFunction   = "UPLOAD_FUNCTION"
	EnvCustomsUploadURL = "CUSTOMS_UPLOAD_URL"
	EnvRetentionDays    = "RETENTION_DAYS"
)

// Config is what a function knows about its surroundings.
type Config struct {
	RequestsTable    string
	PaymentsTable    string
	AssembleQueueURL string
	SignQueueURL     string
	SignDLQURL       string
	UploadFunction   string
	CustomsUploadURL string
	// Retention is how long records are kept; zero means the store's default.
	Retention time.Duration
}

// FromEnv reads the configuration from the environment through getenv
// (os.Getenv when nil) and checks that every variable in required is set.
func FromEnv(getenv func(string) string, required ...string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var missing []string
	for _, name := range required {
		if strings.TrimSpace(getenv(name)) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("config: missing environment variable %s", strings.Join(missing, ", "))
	}
	c := Config{
		RequestsTable:    getenv(EnvRequestsTable),
		PaymentsTable:    getenv(EnvPaymentsTable),
		AssembleQueueURL: getenv(EnvAssembleQueueURL),
		SignQueueURL:     getenv(EnvSignQueueURL),
		SignDLQURL:       getenv(EnvSignDLQURL),
		UploadFunction:   getenv(EnvUploadFunction),
		CustomsUploadURL: getenv(EnvCustomsUploadURL),
	}
	if v := strings.TrimSpace(getenv(EnvRetentionDays)); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days <= 0 {
			return Config{}, fmt.Errorf("config: %s must be a positive number of days, not %q", EnvRetentionDays, v)
		}
		if days < 3*365 {
			return Config{}, fmt.Errorf("config: %s is %d; customs data must be kept at least 1095 days (3 years)", EnvRetentionDays, days)
		}
		c.Retention = time.Duration(days) * 24 * time.Hour
	}
	return c, nil
}
