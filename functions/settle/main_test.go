package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/settle"
)

// TestEntryPoint builds this function, runs it the way Lambda runs a
// bootstrap (with the template's environment) and invokes it with the
// scheduled event fixture: a request ingest recorded but could not queue
// is queued for assembly, and the run's report comes back.
func TestEntryPoint(t *testing.T) {
	env := awstest.New(t)
	fn := lambdatest.StartBinary(t, env, "SettleFunction")
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	ctx := context.Background()
	received := time.Now().Add(-time.Minute)
	r := ceb179.Request{SessionID: "NOT-QUEUED-1", OrderNo: "ORD-S-1", ReceivedAt: received, Deadline: received.Add(ceb179.Window), State: ceb179.StateReceived}
	if _, _, err := store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile("../../events/settle-schedule.json")
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
	var rep settle.Report
	if err := json.Unmarshal(res.Payload, &rep); err != nil || rep.Queued != 1 {
		t.Fatalf("report %s: %v\nlogs:\n%s", res.Payload, err, fn.Logs())
	}
	msgs, err := queue.New(env.SQS, env.Queue("AssembleQueue")).Receive(ctx, 10, time.Second, time.Minute)
	if err != nil || len(msgs) != 1 || !strings.Contains(msgs[0].Body, `"sessionID":"NOT-QUEUED-1"`) {
		t.Fatalf("assemble queue %+v %v", msgs, err)
	}
	if !strings.Contains(fn.Logs(), `"StuckPastDeadline"`) {
		t.Errorf("no StuckPastDeadline metric in the logs:\n%s", fn.Logs())
	}
}
