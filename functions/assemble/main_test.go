package main

import (
	"context"
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
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/records"
)

// TestEntryPoint builds this function, runs it the way Lambda runs a
// bootstrap (lambda.Start polling the emulator's Runtime API, with the
// template's environment), invokes it with the SQS event fixture, and then
// lets an SQS event source deliver a message from the assemble queue.
func TestEntryPoint(t *testing.T) {
	env := awstest.New(t)
	fn := lambdatest.StartBinary(t, env, "AssembleFunction")
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	sign := queue.New(env.SQS, env.Queue("SignQueue"))
	ctx := context.Background()

	// The fixture's first order is paid (by a three-order payment); its
	// second is unknown and its request already past the deadline.
	raw, err := os.ReadFile("../../records/testdata/multi.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := records.ParsePayment(raw)
	if err != nil {
		t.Fatal(err)
	}
	p.Orders = append([]customs.Order(nil), p.Orders...)
	p.Orders[1].OrderNo = "202009231454218421271832"
	p.Orders[2].OrderNo = "ORD-ENTRY-2"
	if errs := store.PutPayments(ctx, []records.Payment{p}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	now := time.Now()
	request := func(sessionID, orderNo string, deadline time.Time) {
		t.Helper()
		r := ceb179.Request{SessionID: sessionID, OrderNo: orderNo, ReceivedAt: deadline.Add(-ceb179.Window), Deadline: deadline, State: ceb179.StateReceived}
		if _, _, err := store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	request("IHWESX-WEASLEY-20230712210643-X7E4PL", "202009231454218421271832", now.Add(ceb179.Window))
	request("fe2374-8fnejf97-32839218", "ord201800002", now.Add(-time.Second))

	payload, err := os.ReadFile("../../events/assemble-sqs.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := fn.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "" {
		t.Fatalf("function error %s: %s\nlogs:\n%s", res.FunctionError, res.Payload, fn.Logs())
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("answer %s: %v", res.Payload, err)
	}
	if r, _ := store.GetRequest(ctx, "IHWESX-WEASLEY-20230712210643-X7E4PL"); r.State != ceb179.StateAssembled {
		t.Errorf("paid order: state %s", r.State)
	}
	if r, _ := store.GetRequest(ctx, "fe2374-8fnejf97-32839218"); r.State != ceb179.StateNoData {
		t.Errorf("unknown order: state %s", r.State)
	}
	pending, err := store.GetPending(ctx, "IHWESX-WEASLEY-20230712210643-X7E4PL")
	if err != nil || !strings.Contains(string(pending.Lists), `"orderNo":"ORD-ENTRY-2"`) {
		t.Errorf("pending upload: %v\n%s", err, pending.Lists)
	}
	if logs := fn.Logs(); strings.Contains(logs, "initalRequest") || strings.Contains(logs, "6222021001115678") {
		t.Errorf("payment data in the logs:\n%s", logs)
	}

	// Through the queue, as the event source mapping delivers it.
	fn.EnableEventSources(t)
	request("QUEUED-1", "ORD-ENTRY-2", time.Now().Add(ceb179.Window))
	if err := queue.New(env.SQS, env.Queue("AssembleQueue")).Send(ctx, ceb179.AssembleMessage{SessionID: "QUEUED-1", OrderNo: "ORD-ENTRY-2"}); err != nil {
		t.Fatal(err)
	}
	var jobs []ceb179.SignJob
	for deadline := time.Now().Add(20 * time.Second); len(jobs) < 2 && time.Now().Before(deadline); {
		msgs, err := sign.Receive(ctx, 10, time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var j ceb179.SignJob
			if err := json.Unmarshal([]byte(m.Body), &j); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, j)
		}
	}
	if len(jobs) != 2 || jobs[0].SessionID != "IHWESX-WEASLEY-20230712210643-X7E4PL" || jobs[1].SessionID != "QUEUED-1" || jobs[1].EbpCode != p.EbpCode {
		t.Errorf("sign jobs %+v\nlogs:\n%s", jobs, fn.Logs())
	}
}
