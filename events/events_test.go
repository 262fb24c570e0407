// Package events_test checks the event fixtures in this directory: one
// realistic event per function, used by the functions' tests and as
// `sam local invoke -e` input. Each must decode strictly into the type the
// function's handler takes, agree with template.yaml and
// docs/architecture.md, and reach a handler intact through lambda.Start.
package events_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// openReq is customs' request (docs/architecture.md, SPEC §1).
type openReq struct {
	OrderNo     string `json:"orderNo"`
	SessionID   string `json:"sessionID"`
	ServiceTime int64  `json:"serviceTime"`
}

// assembleMessage is the assemble queue's message body.
type assembleMessage struct {
	SessionID  string `json:"sessionID"`
	OrderNo    string `json:"orderNo"`
	ReceivedAt int64  `json:"receivedAt"`
	Deadline   int64  `json:"deadline"`
}

// uploadInvoke is the upload function's invocation (both ops).
type uploadInvoke struct {
	Op        string `json:"op"`
	SessionID string `json:"sessionID"`
	Digest    string `json:"digest,omitempty"`
	CertNo    string `json:"certNo,omitempty"`
	SignValue string `json:"signValue,omitempty"`
}

// decodeStrict decodes a fixture, refusing unknown fields.
func decodeStrict(t *testing.T, name string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// formOpenReq reads openReq out of a form body.
func formOpenReq(t *testing.T, body string) openReq {
	t.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	var o openReq
	dec := json.NewDecoder(strings.NewReader(form.Get("openReq")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("openReq %q: %v", form.Get("openReq"), err)
	}
	if o.OrderNo == "" || o.SessionID == "" || o.ServiceTime == 0 {
		t.Fatalf("openReq %+v incomplete", o)
	}
	return o
}

func TestIngestHTTPAPIEvent(t *testing.T) {
	t.Parallel()
	var ev events.APIGatewayV2HTTPRequest
	decodeStrict(t, "ingest-http-api-v2.json", &ev)

	tpl, err := infra.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	var route string
	for _, f := range fns {
		if e, ok := f.Events["PlatDataOpen"]; ok && f.LogicalID == "IngestFunction" {
			route = e.Method + " " + e.Path
		}
	}
	if ev.RouteKey != route || ev.RequestContext.RouteKey != route || ev.RawPath != "/platDataOpen" || ev.RequestContext.HTTP.Method != "POST" {
		t.Errorf("route %q / %q, template %q", ev.RouteKey, ev.RequestContext.RouteKey, route)
	}
	// HTTP APIs base64-encode every body whose content type is not text/*,
	// JSON, XML or JavaScript: a form body arrives encoded.
	if !ev.IsBase64Encoded || !strings.HasPrefix(ev.Headers["content-type"], "application/x-www-form-urlencoded") {
		t.Fatalf("isBase64Encoded %t content-type %q", ev.IsBase64Encoded, ev.Headers["content-type"])
	}
	body, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil {
		t.Fatal(err)
	}
	formOpenReq(t, string(body))
	if ev.Headers["content-length"] == "" || ev.RequestContext.HTTP.SourceIP != ev.Headers["x-forwarded-for"] {
		t.Errorf("headers %v", ev.Headers)
	}
	if !strings.HasPrefix(ev.RequestContext.HTTP.UserAgent, "Apache-HttpClient/") {
		t.Errorf("user agent %q, customs calls with Java's Apache HttpClient", ev.RequestContext.HTTP.UserAgent)
	}
}

// TestIngestALBEvent checks the front door's event: the load balancer's
// plain-http listener on port 80 with multi-value headers on, the address it
// saw appended to X-Forwarded-For.
func TestIngestALBEvent(t *testing.T) {
	t.Parallel()
	var ev events.ALBTargetGroupRequest
	decodeStrict(t, "ingest-alb.json", &ev)
	if ev.HTTPMethod != "POST" || ev.Path != "/platDataOpen" || ev.RequestContext.ELB.TargetGroupArn == "" {
		t.Errorf("method %s path %s target group %q", ev.HTTPMethod, ev.Path, ev.RequestContext.ELB.TargetGroupArn)
	}
	h := ev.MultiValueHeaders
	if len(ev.Headers) != 0 || len(h["x-forwarded-for"]) != 1 || h["x-forwarded-port"][0] != "80" || h["x-forwarded-proto"][0] != "http" {
		t.Errorf("headers %v / %v, want multi-value headers of a plain-http request on port 80", ev.Headers, h)
	}
	if !strings.HasPrefix(h["user-agent"][0], "Apache-HttpClient/") {
		t.Errorf("user agent %q", h["user-agent"])
	}
	body, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil || !ev.IsBase64Encoded {
		t.Fatalf("body: base64 %t, %v", ev.IsBase64Encoded, err)
	}
	formOpenReq(t, string(body))
}

func TestIngestRESTAPIEvent(t *testing.T) {
	t.Parallel()
	var ev events.APIGatewayProxyRequest
	decodeStrict(t, "ingest-rest-api-v1.json", &ev)
	if ev.HTTPMethod != "POST" || ev.Path != "/platDataOpen" || ev.IsBase64Encoded {
		t.Errorf("method %s path %s base64 %t", ev.HTTPMethod, ev.Path, ev.IsBase64Encoded)
	}
	formOpenReq(t, ev.Body)
}

func TestAssembleSQSEvent(t *testing.T) {
	t.Parallel()
	var ev events.SQSEvent
	decodeStrict(t, "assemble-sqs.json", &ev)
	if len(ev.Records) < 2 {
		t.Fatalf("%d records, want a batch", len(ev.Records))
	}
	for _, r := range ev.Records {
		sum := md5.Sum([]byte(r.Body))
		if r.Md5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: md5OfBody %s does not match the body", r.MessageId, r.Md5OfBody)
		}
		if r.EventSource != "aws:sqs" || !strings.Contains(r.EventSourceARN, "AssembleQueue") || r.Attributes["ApproximateReceiveCount"] == "" {
			t.Errorf("%s: source %s %s attributes %v", r.MessageId, r.EventSource, r.EventSourceARN, r.Attributes)
		}
		var m assembleMessage
		dec := json.NewDecoder(strings.NewReader(r.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: body %v", r.MessageId, err)
		}
		if m.SessionID == "" || m.OrderNo == "" || m.Deadline != m.ReceivedAt+120000 {
			t.Errorf("%s: message %+v, want deadline = receivedAt + 120000", r.MessageId, m)
		}
	}
}

func TestUploadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		file   string
		op     string
		signed bool
	}{
		{"ok source", "upload-source.json", "source", false},
		{"ok upload", "upload-upload.json", "upload", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in uploadInvoke
			decodeStrict(t, tc.file, &in)
			if in.Op != tc.op || in.SessionID == "" {
				t.Fatalf("%+v", in)
			}
			if !tc.signed {
				return
			}
			if d, err := hex.DecodeString(in.Digest); err != nil || len(d) != 32 {
				t.Errorf("digest %q is not hex SHA-256", in.Digest)
			}
			if sig, err := base64.StdEncoding.DecodeString(in.SignValue); err != nil || len(sig) != 64 {
				t.Errorf("signValue is not base64 of a 64-byte SM2 r||s")
			}
			if in.CertNo != strings.ToLower(in.CertNo) || in.CertNo == "" {
				t.Errorf("certNo %q, want lower-case hex", in.CertNo)
			}
		})
	}
}

// TestFixturesThroughLambdaStart sends each fixture through the Lambda
// Invoke API and lambda.Start to a handler of the type the function takes,
// and checks the handler received exactly the fixture.
func TestFixturesThroughLambdaStart(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	tests := []struct {
		name    string
		file    string
		handler func(chan<- any) any
		want    any
	}{
		{"ok HTTP API event", "ingest-http-api-v2.json", func(got chan<- any) any {
			return func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				got <- &ev
				return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
			}
		}, &events.APIGatewayV2HTTPRequest{}},
		{"ok SQS event", "assemble-sqs.json", func(got chan<- any) any {
			return func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
				got <- &ev
				return events.SQSEventResponse{}, nil
			}
		}, &events.SQSEvent{}},
		{"ok upload invocation", "upload-upload.json", func(got chan<- any) any {
			return func(_ context.Context, in uploadInvoke) (map[string]string, error) {
				got <- &in
				return map[string]string{"state": "ACCEPTED"}, nil
			}
		}, &uploadInvoke{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			received := make(chan any, 1)
			h := tc.handler(received)
			f := lambdatest.StartHandler(t, env, "Fixture"+strings.ReplaceAll(tc.name[3:], " ", ""), h)
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			f.InvokeJSON(t, json.RawMessage(b), nil)
			got := <-received
			if err := json.Unmarshal(b, tc.want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("handler received %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
