package apigw

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"
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
		name    string
		event   string
		want    string
		wantErr bool
	}{
		{
			name:  "ok HTTP API v2",
			event: `{"version":"2.0","rawPath":"/platDataOpen","rawQueryString":"","headers":{"content-type":"text/plain"},"requestContext":{"http":{"method":"POST","path":"/platDataOpen","sourceIp":"203.0.113.10"}},"body":"aGk=","isBase64Encoded":true}`,
			want:  "POST /platDataOpen hi from 203.0.113.10",
		},
		{
			name:  "ok REST API v1",
			event: `{"resource":"/platDataOpen","path":"/platDataOpen","httpMethod":"POST","headers":{"Content-Type":"text/plain"},"multiValueHeaders":{"Content-Type":["text/plain"]},"multiValueQueryStringParameters":null,"requestContext":{"identity":{"sourceIp":"203.0.113.11"}},"body":"hi","isBase64Encoded":false}`,
			want:  "POST /platDataOpen hi from 203.0.113.11",
		},
		{
			name:    "fail neither version",
			event:   `{"hello":"world"}`,
			wantErr: true,
		},
	}
	h := New(echo)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev core.SwitchableAPIGatewayRequest
			err := json.Unmarshal([]byte(tt.event), &ev)
			if err == nil {
				var resp *core.SwitchableAPIGatewayResponse
				resp, err = h.Handle(context.Background(), ev)
				if err == nil {
					b, _ := json.Marshal(resp)
					var out struct {
						StatusCode int    `json:"statusCode"`
						Body       string `json:"body"`
					}
					_ = json.Unmarshal(b, &out)
					if out.StatusCode != http.StatusAccepted || out.Body != tt.want {
						t.Fatalf("answer %d %q, want 202 %q", out.StatusCode, out.Body, tt.want)
					}
				}
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
