package awsenv_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
