package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// TestEntryPoint builds this function, runs it the way Lambda runs a
// bootstrap, and invokes it with the POST /payments event fixture (an
// IAM-authorized HTTP API request) and variations of it.
func TestEntryPoint(t *testing.T) {
	env := awstest.New(t)
	fn := lambdatest.StartBinary(t, env, "PaymentsFunction")
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Payments: env.Table("PaymentsTable")}, 0)

	raw, err := os.ReadFile("../../events/payments-http-api-v2.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	withBody := func(body string) events.APIGatewayV2HTTPRequest {
		e := ev
		e.Body = body
		return e
	}
	tests := []struct {
		name   string
		event  events.APIGatewayV2HTTPRequest
		status int
		want   string
	}{
		{name: "ok recorded", event: ev, status: 201, want: `"result":"recorded"`},
		{name: "ok duplicate", event: ev, status: 200, want: `"result":"duplicate"`},
		{name: "fail invalid", event: withBody(strings.Replace(ev.Body, `"currency":"142"`, `"currency":"14200"`, 1)), status: 422, want: `payExchangeInfoHead.currency: longer than 4 characters (5)`},
		{name: "fail malformed", event: withBody(`{"guid":"X"}`), status: 400, want: `"error":"malformed"`},
	}
	for _, tt := range tests {
		var resp events.APIGatewayV2HTTPResponse
		fn.InvokeJSON(t, tt.event, &resp)
		if resp.StatusCode != tt.status || !strings.Contains(resp.Body, tt.want) {
			t.Errorf("%s: %d %s, want %d with %s", tt.name, resp.StatusCode, resp.Body, tt.status, tt.want)
		}
	}
	p, err := store.PaymentByOrder(context.Background(), "ord201903040001")
	if err != nil {
		t.Fatal(err)
	}
	want, err := records.ParsePayment([]byte(ev.Body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := p.MarshalJSON()
	if wantJSON, _ := want.MarshalJSON(); string(got) != string(wantJSON) {
		t.Errorf("stored payment\n%s\nwant\n%s", got, wantJSON)
	}
}
