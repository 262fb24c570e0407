package awsenv_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ceb179/ceb179/internal/awsenv"
)

func TestIsLoopbackEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		endpoint string
		want     bool
	}{
		{"ok IPv4 loopback", "http://127.0.0.1:4566", true},
		{"ok IPv6 loopback", "http://[::1]:4566", true},
		{"ok localhost", "http://localhost:4566", true},
		{"fail empty", "", false},
		{"fail AWS", "https://dynamodb.cn-north-1.amazonaws.com.cn", false},
		{"fail private address", "http://10.0.0.5:4566", false},
		{"fail not a URL", "::::", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := awsenv.IsLoopbackEndpoint(tc.endpoint); got != tc.want {
				t.Fatalf("IsLoopbackEndpoint(%q) = %t, want %t", tc.endpoint, got, tc.want)
			}
		})
	}
}

// TestLoadHonoursEndpointURL checks that AWS_ENDPOINT_URL alone sends every
// client to the given endpoint, as the SDK's default configuration does.
func TestLoadHonoursEndpointURL(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"QueueUrls":[]}`))
	}))
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            srv.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL_SQS":        "",
		awsenv.EnvEmulator:            "",
	} {
		t.Setenv(k, v)
	}
	c, err := awsenv.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(c.Config.BaseEndpoint); got != srv.URL {
		t.Fatalf("BaseEndpoint = %q, want %q", got, srv.URL)
	}
	if _, err := c.SQS.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err != nil {
		t.Fatalf("ListQueues: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("the endpoint saw %d requests, want 1", hits.Load())
	}
}

// TestWithEmulatorAt checks that a development stack's published endpoint,
// region and fixed credentials win over what the environment says.
func TestWithEmulatorAt(t *testing.T) {
	var hits atomic.Int64
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"QueueUrls":[]}`))
	}))
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            "http://192.0.2.1:9",
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL_SQS":        "",
		awsenv.EnvEmulator:            "",
	} {
		t.Setenv(k, v)
	}
	c, err := awsenv.Load(context.Background(), awsenv.WithEmulatorAt("cn-north-1", srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if c.Config.Region != "cn-north-1" || aws.ToString(c.Config.BaseEndpoint) != srv.URL {
		t.Fatalf("region %q endpoint %q, want cn-north-1 %s", c.Config.Region, aws.ToString(c.Config.BaseEndpoint), srv.URL)
	}
	if _, err := c.SQS.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err != nil {
		t.Fatalf("ListQueues: %v", err)
	}
	if a, _ := auth.Load().(string); hits.Load() != 1 || !strings.Contains(a, "Credential=local/") {
		t.Fatalf("the emulator saw %d requests signed %q, want 1 signed with the key local", hits.Load(), a)
	}
}

func TestWithRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
	tests := []struct {
		name   string
		region string
		want   string
	}{
		{"ok fixed region", "cn-northwest-1", "cn-northwest-1"},
		{"ok empty keeps the environment's", "", "us-east-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := awsenv.Load(context.Background(), awsenv.WithRegion(tc.region))
			if err != nil {
				t.Fatal(err)
			}
			if c.Config.Region != tc.want {
				t.Fatalf("region %q, want %q", c.Config.Region, tc.want)
			}
		})
	}
}
