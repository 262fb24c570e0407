package lambdatest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179/internal/dev/eventsource"
	"github.com/ceb179/ceb179/internal/queue"
)

// pollWait is the long-poll wait of the event source poller; short, so the
// poller notices the end of its test quickly.
const pollWait = time.Second

// EnableEventSources starts, for each SQS event of the function in
// template.yaml, the event source mapping of package eventsource (the
// emulator's own mapping never invokes) with the event's BatchSize and
// FunctionResponseTypes: it long-polls the queue, invokes the function
// through the Lambda Invoke API with an SQS event, and deletes the messages
// the function processed. With [ReportBatchItemFailures], the messages
// named in the answer's batchItemFailures stay in the queue; a function
// error leaves the whole batch, which comes back after the visibility
// timeout and, past maxReceiveCount, goes to the dead-letter queue. The
// pollers stop when the test ends.
func (f *Function) EnableEventSources(tb testing.TB) {
	tb.Helper()
	started := 0
	for _, name := range sortedKeys(f.spec.Events) {
		e := f.spec.Events[name]
		if e.Type != "SQS" {
			continue
		}
		id, att, ok := e.Queue.GetAtt()
		if !ok || att != "Arn" {
			tb.Fatalf("lambdatest: %s event %s: Queue %s is not !GetAtt <queue>.Arn", f.LogicalID, name, e.Queue)
		}
		p := &eventsource.Poller{
			Queue:                   queue.New(f.env.SQS, f.env.Queue(id)),
			ARN:                     f.env.Stack.QueueARNs[id],
			Region:                  f.env.Region,
			Handler:                 f.invokeSQS,
			BatchSize:               e.BatchSize,
			ReportBatchItemFailures: slices.Contains(e.FunctionResponseTypes, "ReportBatchItemFailures"),
			Wait:                    pollWait,
			Concurrency:             1,
			Timeout:                 startTimeout,
			Logger:                  slog.New(slog.NewTextHandler(f.logs, nil)),
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.Run(ctx)
		}()
		tb.Cleanup(func() {
			cancel()
			<-done
		})
		started++
	}
	if started == 0 {
		tb.Fatalf("lambdatest: %s has no SQS event in the template", f.LogicalID)
	}
}

// invokeSQS invokes the function with one SQS event through the Lambda
// Invoke API, as the event source mapping does.
func (f *Function) invokeSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	payload, err := json.Marshal(ev)
	if err != nil {
		return resp, err
	}
	res, err := f.Invoke(context.WithoutCancel(ctx), payload)
	if err != nil {
		return resp, err
	}
	if res.FunctionError != "" {
		return resp, fmt.Errorf("function error, batch left in the queue: %s", res.Payload)
	}
	if len(res.Payload) > 0 && string(res.Payload) != "null" {
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			return resp, fmt.Errorf("answer is not an SQSEventResponse, batch left in the queue: %s", res.Payload)
		}
	}
	return resp, nil
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
