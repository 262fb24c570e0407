package lambdatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// pollWait is the long-poll wait of the event source poller; short, so the
// poller notices the end of its test quickly.
const pollWait = 1

// EnableEventSources starts, for each SQS event of the function in
// template.yaml, a poller that does what Lambda's SQS event source mapping
// does (the emulator's own mapping never invokes): it long-polls the queue,
// invokes the function with an SQS event of up to BatchSize records, and
// deletes the messages the function processed. With
// FunctionResponseTypes [ReportBatchItemFailures], the messages named in
// the answer's batchItemFailures stay in the queue; a function error leaves
// the whole batch, which comes back after the visibility timeout and, past
// maxReceiveCount, goes to the dead-letter queue. The pollers stop when the
// test ends.
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
		url := f.env.Queue(id)
		arn := f.env.Stack.QueueARNs[id]
		batch := e.BatchSize
		if batch == 0 {
			batch = 10
		}
		reportFailures := slices.Contains(e.FunctionResponseTypes, "ReportBatchItemFailures")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.pollSQS(ctx, url, arn, batch, reportFailures)
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

// pollSQS runs one event source poller until ctx ends.
func (f *Function) pollSQS(ctx context.Context, url, arn string, batch int, reportFailures bool) {
	for ctx.Err() == nil {
		out, err := f.env.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(url),
			MaxNumberOfMessages:         int32(min(batch, 10)),
			WaitTimeSeconds:             pollWait,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(f.logs, "lambdatest: event source %s: receive: %v\n", arn, err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		if len(out.Messages) == 0 {
			continue
		}
		done, err := f.deliver(ctx, out.Messages, arn, reportFailures)
		if err != nil {
			fmt.Fprintf(f.logs, "lambdatest: event source %s: %v\n", arn, err)
		}
		if len(done) == 0 {
			continue
		}
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range done {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := f.env.SQS.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
			fmt.Fprintf(f.logs, "lambdatest: event source %s: delete: %v\n", arn, err)
		}
	}
}

// deliver invokes the function with one batch and returns the messages to
// delete.
func (f *Function) deliver(ctx context.Context, msgs []sqstypes.Message, arn string, reportFailures bool) ([]sqstypes.Message, error) {
	ev := SQSEvent(msgs, arn, f.env.Region)
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	res, err := f.Invoke(context.WithoutCancel(ctx), payload)
	if err != nil {
		return nil, err
	}
	if res.FunctionError != "" {
		return nil, fmt.Errorf("function error, batch left in the queue: %s", res.Payload)
	}
	if !reportFailures {
		return msgs, nil
	}
	var resp events.SQSEventResponse
	if len(res.Payload) > 0 && string(res.Payload) != "null" {
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			return nil, fmt.Errorf("answer is not an SQSEventResponse, batch left in the queue: %s", res.Payload)
		}
	}
	failed := map[string]bool{}
	for _, fl := range resp.BatchItemFailures {
		if !slices.ContainsFunc(msgs, func(m sqstypes.Message) bool { return aws.ToString(m.MessageId) == fl.ItemIdentifier }) {
			// Lambda treats an unknown or empty identifier as a failure of
			// the whole batch.
			return nil, errors.New("batchItemFailures names a message not in the batch; batch left in the queue")
		}
		failed[fl.ItemIdentifier] = true
	}
	var done []sqstypes.Message
	for _, m := range msgs {
		if !failed[aws.ToString(m.MessageId)] {
			done = append(done, m)
		}
	}
	return done, nil
}

// SQSEvent builds the event Lambda's SQS event source mapping delivers for
// msgs received from the queue arn.
func SQSEvent(msgs []sqstypes.Message, arn, region string) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range msgs {
		r := events.SQSMessage{
			MessageId:         aws.ToString(m.MessageId),
			ReceiptHandle:     aws.ToString(m.ReceiptHandle),
			Body:              aws.ToString(m.Body),
			Md5OfBody:         aws.ToString(m.MD5OfBody),
			Attributes:        m.Attributes,
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSource:       "aws:sqs",
			EventSourceARN:    arn,
			AWSRegion:         region,
		}
		r.Md5OfMessageAttributes = aws.ToString(m.MD5OfMessageAttributes)
		for k, a := range m.MessageAttributes {
			r.MessageAttributes[k] = events.SQSMessageAttribute{
				StringValue: a.StringValue,
				BinaryValue: a.BinaryValue,
				DataType:    aws.ToString(a.DataType),
			}
		}
		ev.Records = append(ev.Records, r)
	}
	return ev
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
