package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/queue"
)

// stack is one test's ingest endpoint over the emulated AWS stack.
type stack struct {
	env     *awstest.Env
	store   *dynamo.Store
	queue   *queue.Queue
	metrics *metrics.Recorder
	srv     *httptest.Server
	now     time.Time
	// opts are added to every handler serve builds.
	opts []Option
}

func newStack(t *testing.T) *stack {
	t.Helper()
	env := awstest.New(t)
	s := &stack{
		env:     env,
		store:   dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0),
		queue:   queue.New(env.SQS, env.Queue("AssembleQueue")),
		metrics: metrics.New("ingest", nil),
		now:     time.UnixMilli(1700000000000),
	}
	s.serve(t, s.store, s.queue)
	return s
}

// serve (re)starts the HTTP server with the given dependencies.
func (s *stack) serve(t *testing.T, store RequestStore, q Sender) {
	t.Helper()
	if s.srv != nil {
		s.srv.Close()
	}
	opts := append([]Option{
		WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))),
		WithMetrics(s.metrics),
		WithClock(func() time.Time { return s.now })}, s.opts...)
	h := New(store, q, opts...)
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.srv.Close)
}

// post sends a request like customs does and returns the status and answer.
func (s *stack) post(t *testing.T, contentType, body string) (int, customs.Ack, http.Header) {
	t.Helper()
	return s.do(t, http.MethodPost, Path, contentType, body)
}

func (s *stack) do(t *testing.T, method, path, contentType, body string) (int, customs.Ack, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "Apache-HttpClient/4.5.13 (Java/1.8.0_202)")
	return send(t, req)
}

// send sends req and returns the status, the answer and its headers.
func send(t *testing.T, req *http.Request) (int, customs.Ack, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ack customs.Ack
	if err := json.Unmarshal(raw, &ack); err != nil {
		t.Fatalf("answer %q is not JSON: %v", raw, err)
	}
	return resp.StatusCode, ack, resp.Header
}

// drain returns every message now on the assemble queue, deleting them.
func (s *stack) drain(t *testing.T) []ceb179.AssembleMessage {
	t.Helper()
	var out []ceb179.AssembleMessage
	for {
		msgs, err := s.queue.Receive(context.Background(), 10, time.Second, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		for _, m := range msgs {
			var am ceb179.AssembleMessage
			if err := json.Unmarshal([]byte(m.Body), &am); err != nil {
				t.Fatalf("message %q: %v", m.Body, err)
			}
			out = append(out, am)
			if err := s.queue.Delete(context.Background(), m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func form(openReq string) string {
	return url.Values{"openReq": {openReq}}.Encode()
}

const formType = "application/x-www-form-urlencoded"

func TestRecordedAndEnqueuedOnce(t *testing.T) {
	s := newStack(t)
	status, ack, hdr := s.post(t, formType, form(`{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218","serviceTime":1533271903898}`))
	if status != http.StatusOK || ack.Code != customs.CodeSuccess || ack.Message != "" {
		t.Fatalf("answer = %d %+v, want 200 10000", status, ack)
	}
	if ack.ServiceTime != s.now.UnixMilli() {
		t.Errorf("serviceTime = %d, want %d", ack.ServiceTime, s.now.UnixMilli())
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}

	got, err := s.store.GetRequest(context.Background(), "fe2374-8fnejf97-32839218")
	if err != nil {
		t.Fatal(err)
	}
	want := ceb179.Request{
		SessionID: "fe2374-8fnejf97-32839218", OrderNo: "ord201800002", ServiceTime: 1533271903898,
		ReceivedAt: s.now, SourceIP: "127.0.0.1", Deadline: s.now.Add(120 * time.Second),
		State: ceb179.StateReceived, Enqueued: true,
	}
	if !got.ReceivedAt.Equal(want.ReceivedAt) || !got.Deadline.Equal(want.Deadline) {
		t.Errorf("times = %v/%v, want %v/%v", got.ReceivedAt, got.Deadline, want.ReceivedAt, want.Deadline)
	}
	got.ReceivedAt, got.Deadline = want.ReceivedAt, want.Deadline
	if got != want {
		t.Errorf("recorded %+v, want %+v", got, want)
	}

	msgs := s.drain(t)
	wantMsg := ceb179.AssembleMessage{SessionID: want.SessionID, OrderNo: want.OrderNo, ReceivedAt: s.now.UnixMilli(), Deadline: s.now.Add(ceb179.Window).UnixMilli()}
	if len(msgs) != 1 || msgs[0] != wantMsg {
		t.Fatalf("queued %+v, want exactly [%+v]", msgs, wantMsg)
	}
	if s.metrics.Total(MetricReceived) != 1 {
		t.Errorf("Received metric = %v, want 1", s.metrics.Total(MetricReceived))
	}
}

func TestRecordTTL(t *testing.T) {
	s := newStack(t)
	if status, ack, _ := s.post(t, formType, form(`{"orderNo":"O1","sessionID":"TTL-1","serviceTime":1}`)); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("answer = %d %+v", status, ack)
	}
	out, err := s.env.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(s.env.Table("RequestsTable")),
		Key:       map[string]ddbAttr{"sessionID": str("TTL-1"), "sk": str("REQUEST")},
	})
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := out.Item["expiresAt"].(*ddbNum)
	if !ok {
		t.Fatalf("expiresAt missing: %v", out.Item)
	}
	want := s.now.Add(ceb179.DefaultRetention).Unix()
	if exp.Value != itoa(want) {
		t.Fatalf("expiresAt = %s, want %d (received + 3 years + 30 days)", exp.Value, want)
	}
	if day := out.Item["day"].(*ddbStr).Value; day != "2023-11-15" {
		t.Fatalf("day = %s, want 2023-11-15 (China time)", day)
	}
}

func TestDuplicateSession(t *testing.T) {
	s := newStack(t)
	body := form(`{"orderNo":"O1","sessionID":"DUP-1","serviceTime":1533271903898}`)
	for i := range 3 {
		if status, ack, _ := s.post(t, formType, body); status != 200 || ack.Code != customs.CodeSuccess {
			t.Fatalf("call %d: answer = %d %+v, want 10000", i, status, ack)
		}
		s.now = s.now.Add(time.Second)
	}
	msgs := s.drain(t)
	if len(msgs) != 1 {
		t.Fatalf("queued %d messages for one sessionID, want 1", len(msgs))
	}
	// The first call's deadline stands: a repeat does not move it.
	if msgs[0].Deadline != time.UnixMilli(1700000000000).Add(ceb179.Window).UnixMilli() {
		t.Errorf("deadline = %d, want the first call's", msgs[0].Deadline)
	}
	if got := s.metrics.Total(MetricDuplicate); got != 2 {
		t.Errorf("Duplicate metric = %v, want 2", got)
	}
}

// unreachable is a loopback endpoint where nothing listens.
const unreachable = "http://127.0.0.1:1"

func TestStoreDown(t *testing.T) {
	s := newStack(t)
	down := dynamodb.NewFromConfig(s.env.Config, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(unreachable)
		o.RetryMaxAttempts = 1
	})
	s.serve(t, dynamo.New(down, dynamo.Tables{Requests: s.env.Table("RequestsTable")}, 0), s.queue)

	status, ack, _ := s.post(t, formType, form(`{"orderNo":"O1","sessionID":"STORE-DOWN","serviceTime":1}`))
	if status != http.StatusServiceUnavailable || ack.Code != CodeStoreUnavailable {
		t.Fatalf("answer = %d %+v, want 503 %s", status, ack, CodeStoreUnavailable)
	}
	if strings.Contains(ack.Message, "127.0.0.1") || strings.Contains(ack.Message, "dial") {
		t.Errorf("answer leaks internal error text: %q", ack.Message)
	}
	if msgs := s.drain(t); len(msgs) != 0 {
		t.Fatalf("queued %v for a request that was not recorded", msgs)
	}
	if got := s.metrics.Total(MetricStoreFailure); got != 1 {
		t.Errorf("StoreFailure metric = %v, want 1", got)
	}

	// Customs retries once the store is back: the request goes through.
	s.serve(t, s.store, s.queue)
	if status, ack, _ := s.post(t, formType, form(`{"orderNo":"O1","sessionID":"STORE-DOWN","serviceTime":1}`)); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("retry answer = %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 1 {
		t.Fatalf("queued %d messages after the retry, want 1", len(msgs))
	}
}

func TestQueueDown(t *testing.T) {
	s := newStack(t)
	down := sqs.NewFromConfig(s.env.Config, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(unreachable)
		o.RetryMaxAttempts = 1
	})
	s.serve(t, s.store, queue.New(down, s.env.Queue("AssembleQueue")))

	body := form(`{"orderNo":"O1","sessionID":"QUEUE-DOWN","serviceTime":1}`)
	status, ack, _ := s.post(t, formType, body)
	if status != http.StatusServiceUnavailable || ack.Code != CodeQueueUnavailable {
		t.Fatalf("answer = %d %+v, want 503 %s", status, ack, CodeQueueUnavailable)
	}
	got, err := s.store.GetRequest(context.Background(), "QUEUE-DOWN")
	if err != nil {
		t.Fatalf("the request must stay recorded: %v", err)
	}
	if got.Enqueued {
		t.Fatal("request marked enqueued although the queue was down")
	}
	if s.metrics.Total(MetricQueueFailure) != 1 {
		t.Errorf("QueueFailure metric = %v, want 1", s.metrics.Total(MetricQueueFailure))
	}

	// Customs' retry with the same sessionID must queue it now, once.
	s.serve(t, s.store, s.queue)
	for range 2 {
		if status, ack, _ := s.post(t, formType, body); status != 200 || ack.Code != customs.CodeSuccess {
			t.Fatalf("retry answer = %d %+v", status, ack)
		}
	}
	if msgs := s.drain(t); len(msgs) != 1 || msgs[0].SessionID != "QUEUE-DOWN" {
		t.Fatalf("queued %+v after the retries, want exactly one message", msgs)
	}
	if got, _ := s.store.GetRequest(context.Background(), "QUEUE-DOWN"); !got.Enqueued {
		t.Fatal("request not marked enqueued after the retry")
	}
}

func TestOpenReqQuirks(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name, contentType, body string
		sessionID, orderNo      string
		serviceTime             int64
	}{
		{"ok form with number serviceTime", formType, form(`{"orderNo":"Q-1","sessionID":"QUIRK-1","serviceTime":1533271903898}`), "QUIRK-1", "Q-1", 1533271903898},
		{"ok form with string serviceTime", formType + "; charset=UTF-8", form(`{"orderNo":"Q-2","sessionID":"QUIRK-2","serviceTime":"1533271903898"}`), "QUIRK-2", "Q-2", 1533271903898},
		{"ok form with HTML-escaped value", formType, form(`{&quot;orderNo&quot;:&quot;Q-3&quot;,&quot;sessionID&quot;:&quot;QUIRK-3&quot;,&quot;serviceTime&quot;:1533271903898}`), "QUIRK-3", "Q-3", 1533271903898},
		{"ok form with backslash-escaped value", formType, form(`{\"orderNo\":\"Q-4\",\"sessionID\":\"QUIRK-4\",\"serviceTime\":1533271903898}`), "QUIRK-4", "Q-4", 1533271903898},
		{"ok raw JSON body", "application/json", `{"orderNo":"Q-5","sessionID":"QUIRK-5","serviceTime":1533271903898}`, "QUIRK-5", "Q-5", 1533271903898},
		{"ok raw JSON without content type, keys shuffled", "", `{"serviceTime":"1533271903898","sessionID":"QUIRK-6","orderNo":"Q-6"}`, "QUIRK-6", "Q-6", 1533271903898},
		{"ok form with another charset label", "application/x-www-form-urlencoded;charset=GBK", form(`{"orderNo":"Q-7","sessionID":"QUIRK-7","serviceTime":1}`), "QUIRK-7", "Q-7", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ack, _ := s.post(t, tt.contentType, tt.body)
			if status != 200 || ack.Code != customs.CodeSuccess {
				t.Fatalf("answer = %d %+v, want 10000", status, ack)
			}
			got, err := s.store.GetRequest(context.Background(), tt.sessionID)
			if err != nil {
				t.Fatalf("request not recorded: %v", err)
			}
			if got.OrderNo != tt.orderNo || got.ServiceTime != tt.serviceTime {
				t.Fatalf("recorded orderNo %q serviceTime %d, want %q %d", got.OrderNo, got.ServiceTime, tt.orderNo, tt.serviceTime)
			}
		})
	}
	if msgs := s.drain(t); len(msgs) != len(tests) {
		t.Fatalf("queued %d messages, want %d", len(msgs), len(tests))
	}
}

func TestRefused(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name, method, path, contentType, body string
		wantStatus                            int
		wantMessage                           string
	}{
		{"fail not JSON", "POST", Path, formType, form(`orderNo=1`), 400, "openReq"},
		{"fail missing orderNo", "POST", Path, formType, form(`{"sessionID":"S","serviceTime":1}`), 400, "orderNo"},
		{"fail missing sessionID", "POST", Path, "application/json", `{"orderNo":"O","serviceTime":1}`, 400, "sessionID"},
		{"fail empty body", "POST", Path, formType, "", 400, "openReq"},
		{"fail body over 64 KiB", "POST", Path, formType, "openReq=" + strings.Repeat("a", MaxBodyBytes), 413, "too large"},
		{"fail GET", "GET", Path, "", "", 405, "POST"},
		{"fail wrong path", "POST", "/platDataOpen2", formType, form(`{"orderNo":"O","sessionID":"S","serviceTime":1}`), 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ack, hdr := s.do(t, tt.method, tt.path, tt.contentType, tt.body)
			if status != tt.wantStatus || ack.Code != customs.CodeBadRequest {
				t.Fatalf("answer = %d %+v, want %d %s", status, ack, tt.wantStatus, customs.CodeBadRequest)
			}
			if !strings.Contains(ack.Message, tt.wantMessage) {
				t.Errorf("message %q does not name %q", ack.Message, tt.wantMessage)
			}
			if len(ack.Message) > 120 {
				t.Errorf("message is %d bytes; keep it short", len(ack.Message))
			}
			if status == 405 && hdr.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", hdr.Get("Allow"))
			}
		})
	}
	if msgs := s.drain(t); len(msgs) != 0 {
		t.Fatalf("queued %v for refused requests", msgs)
	}
}

type (
	ddbAttr = ddbtypes.AttributeValue
	ddbStr  = ddbtypes.AttributeValueMemberS
	ddbNum  = ddbtypes.AttributeValueMemberN
)

func str(s string) ddbAttr { return &ddbStr{Value: s} }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
