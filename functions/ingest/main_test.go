package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ingest"
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

// albEvent is the front door's fixture with another sessionID and orderNo
// and X-Forwarded-For as the load balancer hands it over: what the caller
// sent, then the address the load balancer saw.
func albEvent(t *testing.T, orderNo, sessionID, forwardedFor string) []byte {
	t.Helper()
	var ev events.ALBTargetGroupRequest
	if err := json.Unmarshal(readEvent(t, "../../events/ingest-alb.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Body = base64.StdEncoding.EncodeToString(customs.OpenReq{OrderNo: orderNo, SessionID: sessionID, ServiceTime: 1533271903898}.Form())
	ev.MultiValueHeaders["x-forwarded-for"] = []string{forwardedFor}
	delete(ev.MultiValueHeaders, "content-length")
	b, _ := json.Marshal(ev)
	return b
}

// TestGuardsThroughTheFrontDoor runs the built function with a daily cap
// of 2, invoked with the load balancer's events. With an allowlist, a
// caller outside it is refused even when it forges X-Forwarded-For, and
// the callers inside it are never capped. Without one, the third request
// for an order on one day is answered 10000, recorded and queued with
// ceb179.PriorityLow.
func TestGuardsThroughTheFrontDoor(t *testing.T) {
	type step struct {
		name       string
		event      []byte
		sessionID  string
		wantStatus int
		wantCode   string
		wantQueued bool
		wantPrio   ceb179.Priority
	}
	tests := []struct {
		name    string
		cidrs   string
		steps   []step
		metrics []string
	}{
		{"ok allowlist: refused outside, never capped inside", "203.0.113.0/24", []step{
			{"ok customs inside the allowlist", albEvent(t, "GUARD-ORDER", "GUARD-1", "203.0.113.10"), "GUARD-1", 200, customs.CodeSuccess, true, ceb179.PriorityNormal},
			{"fail outside the allowlist", albEvent(t, "GUARD-ORDER", "GUARD-OUT", "198.51.100.9"), "GUARD-OUT", 403, ingest.CodeSourceRefused, false, 0},
			{"fail forged X-Forwarded-For before the real address", albEvent(t, "GUARD-ORDER", "GUARD-FORGED", "203.0.113.10, 198.51.100.9"), "GUARD-FORGED", 403, ingest.CodeSourceRefused, false, 0},
			{"ok second request for the order", albEvent(t, "GUARD-ORDER", "GUARD-2", "203.0.113.11"), "GUARD-2", 200, customs.CodeSuccess, true, ceb179.PriorityNormal},
			{"ok third request from the allowlist is not capped", albEvent(t, "GUARD-ORDER", "GUARD-3", "203.0.113.12"), "GUARD-3", 200, customs.CodeSuccess, true, ceb179.PriorityNormal},
		}, []string{`"Refused"`}},
		{"ok no allowlist: over the cap is signed last", "", []step{
			{"ok first request", albEvent(t, "OPEN-ORDER", "OPEN-1", "198.51.100.20"), "OPEN-1", 200, customs.CodeSuccess, true, ceb179.PriorityNormal},
			{"ok second request", albEvent(t, "OPEN-ORDER", "OPEN-2", "198.51.100.21"), "OPEN-2", 200, customs.CodeSuccess, true, ceb179.PriorityNormal},
			{"ok third request is over the cap, recorded and queued low", albEvent(t, "OPEN-ORDER", "OPEN-3", "198.51.100.22"), "OPEN-3", 200, customs.CodeSuccess, true, ceb179.PriorityLow},
		}, []string{`"Capped"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := awstest.New(t)
			fn := lambdatest.StartBinary(t, env, "IngestFunction", lambdatest.WithEnv(map[string]string{
				"CUSTOMS_SOURCE_CIDRS": tc.cidrs, "ORDER_DAILY_CAP": "2"}))
			store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable")}, 0)
			assemble := queue.New(env.SQS, env.Queue("AssembleQueue"))
			queued := map[string]ceb179.Priority{}
			for _, tt := range tc.steps {
				res, err := fn.Invoke(context.Background(), tt.event)
				if err != nil || res.FunctionError != "" {
					t.Fatalf("%s: invoke: %v %s\nlogs:\n%s", tt.name, err, res.Payload, fn.Logs())
				}
				var resp events.ALBTargetGroupResponse
				if err := json.Unmarshal(res.Payload, &resp); err != nil {
					t.Fatalf("%s: response %s: %v", tt.name, res.Payload, err)
				}
				var ack customs.Ack
				if err := json.Unmarshal([]byte(resp.Body), &ack); err != nil {
					t.Fatalf("%s: body %q: %v", tt.name, resp.Body, err)
				}
				if resp.StatusCode != tt.wantStatus || ack.Code != tt.wantCode {
					t.Fatalf("%s: answer %d %+v, want %d %s", tt.name, resp.StatusCode, ack, tt.wantStatus, tt.wantCode)
				}
				if ct := resp.MultiValueHeaders["Content-Type"]; len(ct) != 1 || ct[0] != customs.AckContentType {
					t.Errorf("%s: Content-Type %v, want %q", tt.name, ct, customs.AckContentType)
				}
				req, err := store.GetRequest(context.Background(), tt.sessionID)
				if !tt.wantQueued {
					if err == nil {
						t.Fatalf("%s: refused caller's request recorded: %+v", tt.name, req)
					}
					continue
				}
				if err != nil || req.State != ceb179.StateReceived || req.Priority != tt.wantPrio {
					t.Fatalf("%s: recorded %+v, %v; want RECEIVED with priority %s", tt.name, req, err, tt.wantPrio)
				}
				queued[tt.sessionID] = tt.wantPrio
			}
			msgs, err := assemble.Receive(context.Background(), 10, time.Second, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(queued) {
				t.Fatalf("assemble queue holds %d messages, want %d: every request answered 10000 is queued", len(msgs), len(queued))
			}
			for _, m := range msgs {
				var am ceb179.AssembleMessage
				if err := json.Unmarshal([]byte(m.Body), &am); err != nil {
					t.Fatal(err)
				}
				if want, ok := queued[am.SessionID]; !ok || am.Priority != want {
					t.Errorf("queued %s with priority %s, want %s", am.SessionID, am.Priority, want)
				}
			}
			for _, want := range tc.metrics {
				if !strings.Contains(fn.Logs(), want) {
					t.Errorf("no %s metric in the function's output", want)
				}
			}
		})
	}
}
