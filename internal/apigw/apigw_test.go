package apigw

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// echo answers with the method, path and body it saw, and the caller's address.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b)+" from "+r.RemoteAddr)
})

func TestHandle(t *testing.T) {
	tests := []struct {
		name        string
		event       string
		want        string
		wantHeaders string // "single" or "multi": where Content-Type must be
		wantErr     bool
	}{
		{
			name:        "ok HTTP API v2",
			event:       `{"version":"2.0","rawPath":"/platDataOpen","rawQueryString":"","headers":{"content-type":"text/plain"},"requestContext":{"http":{"method":"POST","path":"/platDataOpen","sourceIp":"203.0.113.10"}},"body":"aGk=","isBase64Encoded":true}`,
			want:        "POST /platDataOpen hi from 203.0.113.10",
			wantHeaders: "single",
		},
		{
			name:        "ok HTTP API v2 ignores X-Forwarded-For",
			event:       `{"version":"2.0","rawPath":"/platDataOpen","rawQueryString":"","headers":{"x-forwarded-for":"198.51.100.1"},"requestContext":{"http":{"method":"POST","path":"/platDataOpen","sourceIp":"203.0.113.10"}},"body":"hi"}`,
			want:        "POST /platDataOpen hi from 203.0.113.10",
			wantHeaders: "single",
		},
		{
			name:        "ok REST API v1",
			event:       `{"resource":"/platDataOpen","path":"/platDataOpen","httpMethod":"POST","headers":{"Content-Type":"text/plain"},"multiValueHeaders":{"Content-Type":["text/plain"]},"multiValueQueryStringParameters":null,"requestContext":{"identity":{"sourceIp":"203.0.113.11"}},"body":"hi","isBase64Encoded":false}`,
			want:        "POST /platDataOpen hi from 203.0.113.11",
			wantHeaders: "multi",
		},
		{
			name:        "ok load balancer: the address it appended, not the forged one before it",
			event:       `{"requestContext":{"elb":{"targetGroupArn":"arn:aws:elasticloadbalancing:cn-north-1:123456789012:targetgroup/ingest/1"}},"httpMethod":"POST","path":"/platDataOpen","queryStringParameters":{},"headers":{"host":"customs.example.cn","x-forwarded-for":"198.51.100.1, 203.0.113.12"},"body":"hi","isBase64Encoded":false}`,
			want:        "POST /platDataOpen hi from 203.0.113.12",
			wantHeaders: "single",
		},
		{
			name:        "ok load balancer with multi-value headers",
			event:       `{"requestContext":{"elb":{"targetGroupArn":"arn:aws:elasticloadbalancing:cn-north-1:123456789012:targetgroup/ingest/1"}},"httpMethod":"POST","path":"/platDataOpen","multiValueQueryStringParameters":{},"multiValueHeaders":{"host":["customs.example.cn"],"x-forwarded-for":["198.51.100.1","198.51.100.2, 203.0.113.13"]},"body":"aGk=","isBase64Encoded":true}`,
			want:        "POST /platDataOpen hi from 203.0.113.13",
			wantHeaders: "multi",
		},
		{
			name:        "ok load balancer without X-Forwarded-For: no address",
			event:       `{"requestContext":{"elb":{"targetGroupArn":"arn:aws:elasticloadbalancing:cn-north-1:123456789012:targetgroup/ingest/1"}},"httpMethod":"POST","path":"/platDataOpen","headers":{"host":"customs.example.cn"},"body":"hi"}`,
			want:        "POST /platDataOpen hi from ",
			wantHeaders: "single",
		},
		{
			name:    "fail neither version",
			event:   `{"hello":"world"}`,
			wantErr: true,
		},
		{
			name:    "fail not an object",
			event:   `[1]`,
			wantErr: true,
		},
	}
	h := New(echo)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Handle(context.Background(), json.RawMessage(tt.event))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			b, _ := json.Marshal(resp)
			var out struct {
				StatusCode        int                 `json:"statusCode"`
				Body              string              `json:"body"`
				Headers           map[string]string   `json:"headers"`
				MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
			}
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if out.StatusCode != http.StatusAccepted || out.Body != tt.want {
				t.Fatalf("answer %d %q, want 202 %q", out.StatusCode, out.Body, tt.want)
			}
			switch tt.wantHeaders {
			case "single":
				if out.Headers["Content-Type"] != "text/plain" {
					t.Errorf("headers %v, want Content-Type text/plain in headers", out.Headers)
				}
			case "multi":
				if v := out.MultiValueHeaders["Content-Type"]; len(v) != 1 || v[0] != "text/plain" {
					t.Errorf("multiValueHeaders %v, want Content-Type text/plain", out.MultiValueHeaders)
				}
			}
		})
	}
}
