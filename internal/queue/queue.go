// Package queue is ceb179's adapter for Amazon SQS, and the only package of
// the product that calls it: it sends JSON messages to a queue, receives,
// deletes and hides them (one by one or ten a call), reads a queue's depth
// and the dead-letter queue its redrive policy names, and lists and
// redrives dead-letter queues, for every part of the pipeline, the bridge
// and the operator tools. Its errors wrap the domain's kinds: a queue that
// does not exist is ceb179.ErrNotFound, throttling and server faults are
// ceb179.ErrUnavailable.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue is one SQS queue.
type Queue struct {
	client *sqs.Client
	url    string
}

// New returns the queue at url, reached through client.
func New(client *sqs.Client, url string) *Queue {
	return &Queue{client: client, url: url}
}

// URL returns the queue's URL.
func (q *Queue) URL() string { return q.url }

// Send sends v, encoded as JSON, as one message.
func (q *Queue) Send(ctx context.Context, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return q.sendBody(ctx, string(body))
}

// sendBody sends body as it is, as one message.
func (q *Queue) sendBody(ctx context.Context, body string) error {
	if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(q.url),
		MessageBody: aws.String(body),
	}); err != nil {
		return wrap(err, "send to %s", q.url)
	}
	return nil
}

// Message is one received message.
type Message struct {
	// ID is the message's SQS identifier.
	ID string
	// Body is the message text.
	Body string
	// ReceiptHandle identifies this receipt for Delete, ExtendVisibility
	// and ChangeVisibilities.
	ReceiptHandle string
	// ReceiveCount is how many times the message has been received, this time included.
	ReceiveCount int
	// SentAt is when the message was first sent.
	SentAt time.Time
	// Attributes are the message's system attributes as SQS returned them
	// (ApproximateReceiveCount, SentTimestamp, ...).
	Attributes map[string]string
	// MD5OfBody is SQS's digest of the body.
	MD5OfBody string
}

// Receive long-polls for up to n messages (at most 10), waiting up to wait
// (at most 20 s; under one second means the queue's own default) for the
// first one, and hides them for visibility.
func (q *Queue) Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]Message, error) {
	n = min(max(n, 1), 10)
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(min(wait, 20*time.Second) / time.Second),
		VisibilityTimeout:           int32(visibility / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, wrap(err, "receive from %s", q.url)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Attributes: m.Attributes, MD5OfBody: aws.ToString(m.MD5OfBody)}
		if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
			msg.ReceiveCount = n
		}
		if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			msg.SentAt = time.UnixMilli(ms)
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// Delete removes a received message for good.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	if _, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(q.url),
		ReceiptHandle: aws.String(receiptHandle),
	}); err != nil {
		return wrap(err, "delete from %s", q.url)
	}
	return nil
}

// ExtendVisibility hides a received message for d from now.
func (q *Queue) ExtendVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	if _, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: int32(d / time.Second),
	}); err != nil {
		return wrap(err, "change visibility on %s", q.url)
	}
	return nil
}

// ChangeVisibilities hides received messages for d from now with
// ChangeMessageVisibilityBatch, ten a call and a few calls at a time. It
// fails when the change of any message failed.
func (q *Queue) ChangeVisibilities(ctx context.Context, receiptHandles []string, d time.Duration) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
	)
	for start := 0; start < len(receiptHandles); start += 10 {
		chunk := receiptHandles[start:min(start+10, len(receiptHandles))]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := q.changeBatch(ctx, chunk, d); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// changeBatch changes the visibility of at most ten messages in one call.
func (q *Queue) changeBatch(ctx context.Context, receiptHandles []string, d time.Duration) error {
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(receiptHandles))
	for i, r := range receiptHandles {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r), VisibilityTimeout: int32(d / time.Second),
		}
	}
	out, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
	if err != nil {
		return wrap(err, "change visibility of %d messages on %s", len(receiptHandles), q.url)
	}
	if len(out.Failed) > 0 {
		code := aws.ToString(out.Failed[0].Code)
		err := fmt.Errorf("change visibility on %s: %d of %d messages failed (%s)", q.url, len(out.Failed), len(receiptHandles), code)
		if k := kindOf(code); k != "" {
			err = fmt.Errorf("%w: %w", err, k)
		}
		return err
	}
	return nil
}

// Depth returns the approximate number of messages waiting (visible) and
// in flight (received by a consumer, not yet deleted) (sqs:GetQueueAttributes).
func (q *Queue) Depth(ctx context.Context) (waiting, inFlight int, err error) {
	attrs, err := q.attributes(ctx, types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
	if err != nil {
		return 0, 0, err
	}
	waiting, _ = strconv.Atoi(attrs[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(attrs[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return waiting, inFlight, nil
}

// attributes reads attributes of the queue.
func (q *Queue) attributes(ctx context.Context, names ...types.QueueAttributeName) (map[string]string, error) {
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url), AttributeNames: names})
	if err != nil {
		return nil, wrap(err, "read attributes of %s", q.url)
	}
	return out.Attributes, nil
}
