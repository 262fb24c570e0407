package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ceb179/ceb179"
)

// DeadLetters is a dead-letter queue and the source queue its messages
// came from and are redriven to. Build it with DeadLettersOf.
type DeadLetters struct {
	// Queue is the dead-letter queue.
	*Queue
	source *Queue
}

// DeadLettersOf returns the dead-letter queue of source: the queue at
// dlqURL when it is given, otherwise the target of source's redrive policy
// (sqs:GetQueueAttributes on source, sqs:GetQueueUrl). A source queue whose
// policy names no dead-letter queue is ceb179.ErrNotFound.
func DeadLettersOf(ctx context.Context, source *Queue, dlqURL string) (*DeadLetters, error) {
	if dlqURL != "" {
		return &DeadLetters{Queue: &Queue{client: source.client, url: dlqURL}, source: source}, nil
	}
	attrs, err := source.attributes(ctx, types.QueueAttributeNameRedrivePolicy)
	if err != nil {
		return nil, fmt.Errorf("redrive policy: %w", err)
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(attrs[string(types.QueueAttributeNameRedrivePolicy)]), &p); err != nil || p.DeadLetterTargetArn == "" {
		return nil, fmt.Errorf("%s has no redrive policy naming a dead-letter queue: %w", source.url, ceb179.ErrNotFound)
	}
	// arn:aws:sqs:region:account:name
	parts := strings.Split(p.DeadLetterTargetArn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		return nil, fmt.Errorf("%s: dead-letter target %q is not a queue ARN", source.url, p.DeadLetterTargetArn)
	}
	out, err := source.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return nil, wrap(err, "dead-letter queue %s", parts[5])
	}
	return &DeadLetters{Queue: &Queue{client: source.client, url: aws.ToString(out.QueueUrl)}, source: source}, nil
}

// Source returns the URL of the queue the dead letters came from.
func (d *DeadLetters) Source() string { return d.source.url }

// peekHide is how long Peek hides the messages it has seen while it looks
// for more; it makes them visible again as soon as it is done.
const peekHide = 30 * time.Second

// emptyReceives is how many receives in a row must bring nothing new
// before a queue counts as read through (SQS samples its servers).
const emptyReceives = 2

// Peek returns up to max messages of the queue without removing any. It
// receives them with a short visibility timeout (so that each is seen once
// while looking) and, when done, makes every one visible again at once;
// if Peek is interrupted they reappear within 30 seconds on their own.
// Receiving counts as a receive: each message's ReceiveCount grows by one.
func (q *Queue) Peek(ctx context.Context, max int) ([]Message, error) {
	seen := map[string]bool{}
	var out []Message
	for try, empty := 0, 0; len(out) < max && empty < emptyReceives && try < max/10+20; try++ {
		msgs, err := q.Receive(ctx, min(10, max-len(out)), time.Second, peekHide)
		if err != nil {
			q.release(ctx, out)
			return nil, err
		}
		fresh := 0
		for _, m := range msgs {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			out = append(out, m)
			fresh++
		}
		if fresh == 0 {
			empty++
		} else {
			empty = 0
		}
	}
	q.release(ctx, out)
	return out, nil
}

// release makes received messages visible again, even when ctx has ended.
// A failure only delays them until their visibility timeout ends.
func (q *Queue) release(ctx context.Context, msgs []Message) {
	receipts := make([]string, len(msgs))
	for i, m := range msgs {
		receipts[i] = m.ReceiptHandle
	}
	_ = q.ChangeVisibilities(context.WithoutCancel(ctx), receipts, 0)
}

// redriveHide is how long a message being moved stays hidden; a redrive
// interrupted between send and delete leaves a copy that reappears then.
const redriveHide = 60 * time.Second

// Redrive moves up to max messages from the dead-letter queue back to the
// source queue: each is sent first and deleted after, so a failure in
// between leaves a duplicate (which the pipeline tolerates), never a loss.
// keep, when not nil, decides per message; a message it refuses is deleted
// without being sent. A message whose send fails is made visible again
// with the rest of its batch, and the redrive stops. It returns the
// messages moved and dropped until it stopped.
func (d *DeadLetters) Redrive(ctx context.Context, max int, keep func(Message) bool) (moved, dropped []Message, err error) {
	for try, empty := 0, 0; len(moved)+len(dropped) < max && empty < emptyReceives && try < max/10+20; try++ {
		msgs, err := d.Receive(ctx, min(10, max-len(moved)-len(dropped)), time.Second, redriveHide)
		if err != nil {
			return moved, dropped, err
		}
		if len(msgs) == 0 {
			empty++
			continue
		}
		empty = 0
		for i, m := range msgs {
			ok := keep == nil || keep(m)
			if ok {
				if err := d.source.sendBody(ctx, m.Body); err != nil {
					d.release(ctx, msgs[i:])
					return moved, dropped, fmt.Errorf("send back to the source queue: %w", err)
				}
			}
			if err := d.Delete(ctx, m.ReceiptHandle); err != nil {
				return moved, dropped, fmt.Errorf("delete from the dead-letter queue (it comes back in %s, a duplicate when it was sent): %w", redriveHide, err)
			}
			if ok {
				moved = append(moved, m)
			} else {
				dropped = append(dropped, m)
			}
		}
	}
	return moved, dropped, nil
}

// PeekBodies returns the bodies of up to max messages of the queue, looked
// at as Peek looks (left in the queue).
func (q *Queue) PeekBodies(ctx context.Context, max int) ([]string, error) {
	msgs, err := q.Peek(ctx, max)
	if err != nil {
		return nil, err
	}
	bodies := make([]string, len(msgs))
	for i, m := range msgs {
		bodies[i] = m.Body
	}
	return bodies, nil
}
