package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179/internal/awstest"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/lambdatest"
	"github.com/ceb179/ceb179/internal/queue"
)

// TestEntryPoint builds this function, runs it the way Lambda runs a
// bootstrap (lambda.Start polling the emulator's Runtime API, with the
// template's environment) and invokes it with API Gateway events.
func TestEntryPoint(t *testing.T) {
	env := awstest.New(t)
	fn := lambdatest.StartBinary(t, env, "IngestFunction")
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable")}, 0)
	assemble := queue.New(env.SQS, env.Queue("AssembleQueue"))

	v2 := readEvent(t, "../../events/ingest-http-api-v2.json")
	v1 := readEvent(t, "../../events/ingest-rest-api-v1.json")
	tests := []struct {
		name       string
		payload    []byte
		sessionID  string
		wantStatus int
		wantCode   string
	}{
		{"ok HTTP API v2 event", v2, sessionOf(t, v2), 200, customs.CodeSuccess},
		{"ok REST API v1 event", replaceSession(t, v1, "REST-V1-SESSION"), "REST-V1-SESSION", 200, customs.CodeSuccess},
		{"fail unparseable openReq", withBody(t, v2, "junk=1"), "", 400, customs.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := fn.Invoke(context.Background(), tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if res.FunctionError != "" {
				t.Fatalf("function error %s: %s\nlogs:\n%s", res.FunctionError, res.Payload, fn.Logs())
			}
			var resp struct {
				StatusCode int               `json:"statusCode"`
				Headers    map[string]string `json:"headers"`
				// REST API v1 answers carry their headers here.
				MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
				Body              string              `json:"body"`
			}
			if err := json.Unmarshal(res.Payload, &resp); err != nil {
				t.Fatalf("response %s: %v", res.Payload, err)
			}
			var ack customs.Ack
			if err := json.Unmarshal([]byte(resp.Body), &ack); err != nil {
				t.Fatalf("body %q: %v", resp.Body, err)
			}
			if resp.StatusCode != tt.wantStatus || ack.Code != tt.wantCode {
				t.Fatalf("answer %d %+v, want %d %s", resp.StatusCode, ack, tt.wantStatus, tt.wantCode)
			}
			ct := resp.Headers["Content-Type"]
			if v := resp.MultiValueHeaders["Content-Type"]; ct == "" && len(v) == 1 {
				ct = v[0]
			}
			if ct != customs.AckContentType {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.sessionID == "" {
				return
			}
			req, err := store.GetRequest(context.Background(), tt.sessionID)
			if err != nil {
				t.Fatalf("request not recorded: %v", err)
			}
			if !req.Enqueued || req.SourceIP == "" {
				t.Fatalf("recorded %+v", req)
			}
		})
	}
	msgs, err := assemble.Receive(context.Background(), 10, time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("assemble queue holds %d messages, want 2", len(msgs))
	}
}

func readEvent(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sessionOf returns the sessionID in an API Gateway event's openReq.
func sessionOf(t *testing.T, event []byte) string {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			t.Fatal(err)
		}
	}
	open, err := customs.ParseOpenReq(ev.Headers["content-type"], body)
	if err != nil {
		t.Fatalf("event openReq: %v", err)
	}
	return open.SessionID
}

// withBody gives an event another body, base64-encoded as API Gateway sends
// form bodies.
func withBody(t *testing.T, event []byte, body string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	ev["body"] = base64.StdEncoding.EncodeToString([]byte(body))
	ev["isBase64Encoded"] = true
	b, _ := json.Marshal(ev)
	return b
}

// replaceSession gives a v1 event's openReq another sessionID.
func replaceSession(t *testing.T, event []byte, sessionID string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	ev["body"] = string(customs.OpenReq{OrderNo: "ORD-REST-1", SessionID: sessionID, ServiceTime: 1533271903898}.Form())
	b, _ := json.Marshal(ev)
	return b
}
