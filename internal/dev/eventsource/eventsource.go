// Package eventsource does locally what Lambda's SQS event source mapping
// does in AWS: it long-polls a queue, hands batches of messages to an SQS
// handler as an events.SQSEvent, and deletes the messages the handler
// processed. With ReportBatchItemFailures the messages the handler names in
// its answer stay on the queue (an identifier not in the batch fails the
// whole batch, as in Lambda); without it the answer is ignored. A handler
// error leaves the whole batch. What stays comes back after its visibility
// timeout and, past the queue's maxReceiveCount, SQS moves it to the
// dead-letter queue. ceb179 local feeds assemble with it, and the tests feed
// functions running under the Lambda Runtime API.
package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/queue"
)

// DefaultConcurrency is how many pollers a Poller runs by default: Lambda's
// SQS event source mapping polls with five at once, so one slow batch never
// stops the queue.
const DefaultConcurrency = 5

// Handler is a Lambda function triggered by SQS.
type Handler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Queue is the queue a Poller reads.
type Queue interface {
	Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]queue.Message, error)
	Delete(ctx context.Context, receiptHandle string) error
}

// Poller feeds one queue to one handler.
type Poller struct {
	// Queue is the event source.
	Queue Queue
	// ARN is the queue's ARN, set as eventSourceARN on each record.
	ARN string
	// Region is set as awsRegion on each record.
	Region string
	// Handler processes the batches.
	Handler Handler
	// BatchSize is the largest batch (default and maximum 10).
	BatchSize int
	// ReportBatchItemFailures is the template's FunctionResponseTypes
	// setting: when false, the handler's answer is ignored.
	ReportBatchItemFailures bool
	// Visibility is the visibility timeout while a batch is processed; zero
	// keeps the queue's own.
	Visibility time.Duration
	// Wait is the long-poll wait (default 20 s).
	Wait time.Duration
	// Timeout bounds one invocation, like a function's timeout (default 30 s).
	Timeout time.Duration
	// Concurrency is how many pollers receive and process batches at once
	// (DefaultConcurrency when zero, as Lambda's event source mapping starts
	// with five).
	Concurrency int
	// Logger receives errors; slog.Default() when nil.
	Logger *slog.Logger
	// Finish makes a stop graceful, as Lambda lets an invocation run to
	// its end: a batch received before ctx ends is still handed to the
	// handler, with a context that is not cancelled (bounded by Timeout),
	// and what it processed is deleted. Without it a stop cancels the
	// invocation and leaves the batch in flight, to come back after its
	// visibility timeout; an emulator that does not keep messages in
	// flight across a restart (ceb179 local --data) would lose it.
	Finish bool
}

// Run polls until ctx ends. It returns nil when ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	if p.Queue == nil || p.Handler == nil {
		return errors.New("eventsource: a poller needs a queue and a handler")
	}
	batch := p.BatchSize
	if batch <= 0 || batch > 10 {
		batch = 10
	}
	wait := p.Wait
	if wait <= 0 {
		wait = 20 * time.Second
	}
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	workers := p.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msgs, err := p.Queue.Receive(ctx, batch, wait, p.Visibility)
				if err != nil {
					if ctx.Err() == nil {
						log.Error("event source receive", slog.String("error", err.Error()))
						_ = clock.Sleep(ctx, time.Second)
					}
					continue
				}
				if len(msgs) > 0 {
					dctx := ctx
					if p.Finish {
						dctx = context.WithoutCancel(ctx)
					}
					p.deliver(dctx, msgs, log)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// deliver invokes the handler with one batch and deletes what it processed.
func (p *Poller) deliver(ctx context.Context, msgs []queue.Message, log *slog.Logger) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ictx, cancel := context.WithTimeout(ctx, timeout)
	resp, err := p.invoke(ictx, Event(msgs, p.ARN, p.Region))
	cancel()
	if err != nil {
		// Like Lambda: the whole batch stays and comes back.
		log.Error("event source invoke", slog.Int("messages", len(msgs)), slog.String("error", err.Error()))
		return
	}
	failed := map[string]bool{}
	if p.ReportBatchItemFailures {
		inBatch := map[string]bool{}
		for _, m := range msgs {
			inBatch[m.ID] = true
		}
		for _, f := range resp.BatchItemFailures {
			if !inBatch[f.ItemIdentifier] {
				log.Error("event source: batchItemFailures names a message not in the batch; batch left in the queue", slog.String("itemIdentifier", f.ItemIdentifier))
				return
			}
			failed[f.ItemIdentifier] = true
		}
	}
	for _, m := range msgs {
		if failed[m.ID] {
			continue
		}
		if err := p.Queue.Delete(ctx, m.ReceiptHandle); err != nil && ctx.Err() == nil {
			log.Error("event source delete", slog.String("messageId", m.ID), slog.String("error", err.Error()))
		}
	}
}

// invoke calls the handler, turning a panic into an error as Lambda turns it
// into a failed invocation.
func (p *Poller) invoke(ctx context.Context, ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return p.Handler(ctx, ev)
}

// Event builds the SQS event Lambda would deliver for msgs.
func Event(msgs []queue.Message, arn, region string) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		attrs := make(map[string]string, len(m.Attributes)+2)
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		if _, ok := attrs["ApproximateReceiveCount"]; !ok {
			attrs["ApproximateReceiveCount"] = strconv.Itoa(m.ReceiveCount)
		}
		if _, ok := attrs["SentTimestamp"]; !ok && !m.SentAt.IsZero() {
			attrs["SentTimestamp"] = strconv.FormatInt(m.SentAt.UnixMilli(), 10)
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:      m.ID,
			ReceiptHandle:  m.ReceiptHandle,
			Body:           m.Body,
			Md5OfBody:      m.MD5OfBody,
			Attributes:     attrs,
			EventSource:    "aws:sqs",
			EventSourceARN: arn,
			AWSRegion:      region,
		})
	}
	return ev
}
