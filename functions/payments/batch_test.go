package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// payment returns the three-order payment of records/testdata with
// identifiers made unique by tag and i.
func payment(tb testing.TB, tag string, i int) records.Payment {
	tb.Helper()
	raw, err := os.ReadFile("../../records/testdata/multi.json")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := records.ParsePayment(raw)
	if err != nil {
		tb.Fatal(err)
	}
	p.PayTransactionID = fmt.Sprintf("%s-PAY-%03d", tag, i)
	for j := range p.Orders {
		p.Orders[j].OrderNo = fmt.Sprintf("%s-ORD-%03d-%d", tag, i, j)
	}
	return p
}

// line is the JSON line of p.
func line(tb testing.TB, p records.Payment) string {
	tb.Helper()
	b, err := p.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// event is the POST path fixture event with body and content type.
func event(tb testing.TB, path, contentType, body string) events.APIGatewayV2HTTPRequest {
	tb.Helper()
	raw, err := os.ReadFile("../../events/payments-http-api-v2.json")
	if err != nil {
		tb.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		tb.Fatal(err)
	}
	ev.RawPath, ev.RouteKey, ev.RequestContext.HTTP.Path, ev.RequestContext.RouteKey = path, "POST "+path, path, "POST "+path
	ev.Headers = map[string]string{"content-type": contentType}
	ev.Body = body
	return ev
}

// invokeBatch posts body to /payments through fn and decodes the answer.
func invokeBatch(tb testing.TB, fn *lambdatest.Function, contentType, body string) (int, records.BatchAnswer) {
	tb.Helper()
	var resp events.APIGatewayV2HTTPResponse
	fn.InvokeJSON(tb, event(tb, "/payments", contentType, body), &resp)
	var a records.BatchAnswer
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
		tb.Fatalf("answer %d %s: %v", resp.StatusCode, resp.Body, err)
	}
	return resp.StatusCode, a
}

// storage says how much of p the table holds: "whole" (head, every order
// item and every owner item naming p), "absent" (none of them) or
// "PARTIAL", read straight from the table.
func storage(tb testing.TB, db *dynamodb.Client, table string, p records.Payment) string {
	tb.Helper()
	ctx := context.Background()
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "PAY#" + p.PayTransactionID}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	n := len(out.Items)
	for _, o := range p.Orders {
		got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "ORDER#" + o.OrderNo}, "sk": &types.AttributeValueMemberS{Value: "PAYMENT"}}})
		if err != nil {
			tb.Fatal(err)
		}
		if id, ok := got.Item["payTransactionId"].(*types.AttributeValueMemberS); ok && id.Value == p.PayTransactionID {
			n++
		}
	}
	switch n {
	case 0:
		return "absent"
	case 1 + 2*len(p.Orders):
		return "whole"
	}
	return "PARTIAL"
}

// TestBatch posts 100 payments in one JSON array through the real
// function: 3 invalid, 2 duplicates (one recorded before, one repeated in
// the batch) and 95 new ones, which are stored exactly; then a small batch
// as JSON Lines.
func TestBatch(t *testing.T) {
	env := awstest.New(t)
	fn := lambdatest.StartBinary(t, env, "PaymentsFunction")
	table := env.Table("PaymentsTable")
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Payments: table}, 0)
	ctx := context.Background()

	if err := store.PutPayments(ctx, []records.Payment{payment(t, "B", 7)})[0]; err != nil {
		t.Fatal(err)
	}
	items := make([]json.RawMessage, 100)
	want := map[int]records.Result{}
	var fresh []records.Payment
	for i := range items {
		p := payment(t, "B", i)
		switch i {
		case 7:
			want[i] = records.Duplicate // recorded before the batch
		case 50:
			p = payment(t, "B", 20) // the same payment as item 20
			want[i] = records.Duplicate
		default:
			want[i] = records.Recorded
			fresh = append(fresh, p)
		}
		items[i] = json.RawMessage(line(t, p))
	}
	items[3] = json.RawMessage(strings.Replace(string(items[3]), `"currency":"142"`, `"currency":"14200"`, 1))
	items[40] = json.RawMessage(strings.Replace(string(items[40]), `"recpName":"杭州某某跨境贸易有限公司"`, `"recpName":""`, 1))
	items[77] = json.RawMessage(`{"guid":"X","payTransactionId":"B-PAY-077"}`)
	for _, i := range []int{3, 40, 77} {
		want[i] = records.Invalid
		fresh = slices.DeleteFunc(fresh, func(p records.Payment) bool { return p.PayTransactionID == fmt.Sprintf("B-PAY-%03d", i) })
	}
	body, _ := json.Marshal(items)
	status, a := invokeBatch(t, fn, "application/json", string(body))
	if status != 200 || a.Counts[records.Recorded] != 95 || a.Counts[records.Duplicate] != 2 || a.Counts[records.Invalid] != 3 || len(a.Items) != 100 {
		t.Fatalf("status %d counts %v, %d items", status, a.Counts, len(a.Items))
	}
	for i, o := range a.Items {
		if o.Index != i || o.Result != want[i] {
			t.Errorf("item %d: %+v, want %s", i, o, want[i])
		}
	}
	for i, reason := range map[int]string{3: "payExchangeInfoHead.currency: longer than 4 characters (5)",
		40: "payExchangeInfoLists[1].recpName: required", 77: `unknown key "guid"`} {
		if r := strings.Join(a.Items[i].Reasons, "; "); !strings.Contains(r, reason) {
			t.Errorf("item %d reasons %q, want %q", i, r, reason)
		}
	}
	if len(fresh) != 95 {
		t.Fatalf("%d fresh payments, want 95", len(fresh))
	}
	for _, p := range fresh {
		got, err := store.GetPayment(ctx, p.PayTransactionID)
		if err != nil {
			t.Fatalf("%s: %v", p.PayTransactionID, err)
		}
		if line(t, got) != line(t, p) {
			t.Errorf("%s stored differently", p.PayTransactionID)
		}
	}
	for _, i := range []int{3, 40, 77} {
		if s := storage(t, env.DynamoDB, table, payment(t, "B", i)); s != "absent" {
			t.Errorf("invalid item %d: %s", i, s)
		}
	}

	t.Run("ok JSON Lines", func(t *testing.T) {
		var b strings.Builder
		for i := range 4 {
			b.WriteString(line(t, payment(t, "L", i)) + "\n\n")
		}
		b.WriteString(line(t, payment(t, "B", 8)) + "\n") // recorded above
		status, a := invokeBatch(t, fn, "application/x-ndjson", b.String())
		if status != 200 || a.Counts[records.Recorded] != 4 || a.Counts[records.Duplicate] != 1 || a.Items[4].PayTransactionID != "B-PAY-008" {
			t.Errorf("status %d answer %+v", status, a)
		}
	})
	t.Run("fail more than 100", func(t *testing.T) {
		many := make([]json.RawMessage, 101)
		for i := range many {
			many[i] = json.RawMessage(line(t, payment(t, "M", i)))
		}
		body, _ := json.Marshal(many)
		status, a := invokeBatch(t, fn, "application/json", string(body))
		if status != 400 || a.Error != "too many" || len(a.Items) != 0 {
			t.Errorf("status %d answer %+v", status, a)
		}
		if s := storage(t, env.DynamoDB, table, payment(t, "M", 0)); s != "absent" {
			t.Errorf("refused batch stored: %s", s)
		}
	})
	t.Run("fail conflict", func(t *testing.T) {
		p := payment(t, "B", 9)
		p.Note = "other data"
		other := payment(t, "C", 1)
		other.Orders[2].OrderNo = "B-ORD-010-2" // an order of a recorded payment
		body, _ := json.Marshal([]json.RawMessage{json.RawMessage(line(t, p)), json.RawMessage(line(t, other))})
		status, a := invokeBatch(t, fn, "application/json", string(body))
		if status != 200 || a.Items[0].Result != records.Conflict || a.Items[1].Result != records.Conflict ||
			!strings.Contains(a.Items[1].Reasons[0], "order B-ORD-010-2 already belongs to payment B-PAY-010") {
			t.Errorf("status %d answer %+v", status, a)
		}
		if s := storage(t, env.DynamoDB, table, other); s != "absent" {
			t.Errorf("conflicting payment: %s", s)
		}
	})
}

// faultProxy stands between the function and the emulator and breaks
// TransactWriteItems calls that hold poison: before the emulator sees them
// (mode "before"), or after it applied them, losing the answer (mode
// "after"). It counts the calls it broke.
type faultProxy struct {
	target *url.URL
	poison atomic.Value // string; "" breaks nothing
	after  atomic.Bool
	broken atomic.Int64
	rp     *httputil.ReverseProxy
}

func newFaultProxy(t *testing.T, endpoint string) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultProxy{target: u, rp: httputil.NewSingleHostReverseProxy(u)}
	f.poison.Store("")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	poison := f.poison.Load().(string)
	if poison == "" || !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") || !bytes.Contains(body, []byte(poison)) {
		f.rp.ServeHTTP(w, r)
		return
	}
	f.broken.Add(1)
	if f.after.Load() {
		f.rp.ServeHTTP(httptest.NewRecorder(), r) // applied; the answer is lost
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected fault"}`)
}

// TestBatchStoreFails breaks the store in the middle of a batch of 100
// payments: the transaction holding payment 55 fails every time it is sent.
// Each payment is then whole or absent, never half-written; the answer is
// 503 with the unstored ones "unavailable" and the others recorded; sent
// again, the batch completes. When the store applies a transaction but
// its answer is lost, the payments are whole and answer recorded or
// duplicate, never conflict.
func TestBatchStoreFails(t *testing.T) {
	env := awstest.New(t)
	proxy, proxyURL := newFaultProxy(t, env.Endpoint)
	fn := lambdatest.StartBinary(t, env, "PaymentsFunction", lambdatest.WithEnv(map[string]string{"AWS_ENDPOINT_URL": proxyURL}))
	table := env.Table("PaymentsTable")

	ps := make([]records.Payment, 100)
	items := make([]json.RawMessage, 100)
	for i := range ps {
		ps[i] = payment(t, "F", i)
		items[i] = json.RawMessage(line(t, ps[i]))
	}
	body, _ := json.Marshal(items)
	proxy.poison.Store(`"F-PAY-055"`)
	status, a := invokeBatch(t, fn, "application/json", string(body))
	if proxy.broken.Load() == 0 {
		t.Fatal("no transaction was broken")
	}
	unavailable := 0
	for i, o := range a.Items {
		s := storage(t, env.DynamoDB, table, ps[i])
		switch {
		case s == "PARTIAL":
			t.Errorf("payment %d half-written (answered %s)", i, o.Result)
		case o.Result == records.Recorded && s != "whole", o.Result == records.Unavailable && s != "absent":
			t.Errorf("payment %d answered %s but is %s", i, o.Result, s)
		case o.Result != records.Recorded && o.Result != records.Unavailable:
			t.Errorf("payment %d answered %+v", i, o)
		}
		if o.Result == records.Unavailable {
			unavailable++
		}
	}
	if status != 503 || a.Items[55].Result != records.Unavailable || unavailable == 0 || unavailable == 100 {
		t.Fatalf("status %d, item 55 %s, %d unavailable", status, a.Items[55].Result, unavailable)
	}

	proxy.poison.Store("")
	status, a = invokeBatch(t, fn, "application/json", string(body))
	if status != 200 || a.Counts[records.Recorded] != unavailable || a.Counts[records.Duplicate] != 100-unavailable {
		t.Fatalf("again: status %d counts %v, want %d recorded", status, a.Counts, unavailable)
	}
	for i := range ps {
		if s := storage(t, env.DynamoDB, table, ps[i]); s != "whole" {
			t.Errorf("payment %d after the second post: %s", i, s)
		}
	}

	t.Run("ok answer lost after the write", func(t *testing.T) {
		for i := range ps {
			ps[i] = payment(t, "G", i)
			items[i] = json.RawMessage(line(t, ps[i]))
		}
		body, _ := json.Marshal(items)
		before := proxy.broken.Load()
		proxy.after.Store(true)
		proxy.poison.Store(`"G-PAY-030"`)
		defer proxy.poison.Store("")
		status, a := invokeBatch(t, fn, "application/json", string(body))
		if proxy.broken.Load() == before {
			t.Fatal("no transaction was broken")
		}
		for i, o := range a.Items {
			if s := storage(t, env.DynamoDB, table, ps[i]); s == "PARTIAL" || (o.Result != records.Unavailable && s != "whole") {
				t.Errorf("payment %d answered %s, is %s", i, o.Result, s)
			}
			if o.Result == records.Conflict || o.Result == records.Invalid {
				t.Errorf("payment %d answered %+v", i, o)
			}
		}
		if status != 200 && status != 503 {
			t.Errorf("status %d", status)
		}
	})
}
