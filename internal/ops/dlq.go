package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/ceb179/ceb179"
)

// DLQ is a dead-letter queue and the source queue its messages came from.
type DLQ struct {
	// Name is the source queue's role: "assemble" or "sign".
	Name string
	// Source is the source queue's URL; URL is the dead-letter queue's.
	Source, URL string

	client *sqs.Client
}

// ResolveDLQ returns the dead-letter queue of the source queue at
// sourceURL: dlqURL when given, otherwise the target of the source queue's
// RedrivePolicy.
func ResolveDLQ(ctx context.Context, client *sqs.Client, name, sourceURL, dlqURL string) (*DLQ, error) {
	if sourceURL == "" {
		return nil, fmt.Errorf("%s queue: no URL configured", name)
	}
	d := &DLQ{Name: name, Source: sourceURL, URL: dlqURL, client: client}
	if dlqURL != "" {
		return d, nil
	}
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(sourceURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return nil, fmt.Errorf("%s queue: read redrive policy: %w", name, err)
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]), &p); err != nil || p.DeadLetterTargetArn == "" {
		return nil, fmt.Errorf("%s queue has no redrive policy naming a dead-letter queue", name)
	}
	// arn:aws:sqs:region:account:name
	parts := strings.Split(p.DeadLetterTargetArn, ":")
	if len(parts) != 6 {
		return nil, fmt.Errorf("%s queue: dead-letter target %q is not a queue ARN", name, p.DeadLetterTargetArn)
	}
	u, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return nil, fmt.Errorf("%s queue: dead-letter queue %s: %w", name, parts[5], err)
	}
	d.URL = aws.ToString(u.QueueUrl)
	return d, nil
}

// DLQMessage is one message found in a dead-letter queue.
type DLQMessage struct {
	// Queue is the source queue's role.
	Queue string `json:"queue"`
	// ID is the SQS message ID.
	ID string `json:"id"`
	// SessionID, Digest and Deadline are read from the body when present.
	SessionID string    `json:"sessionID,omitempty"`
	Digest    string    `json:"digest,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
	// Replay is the replay number of an assemble message.
	Replay int `json:"replay,omitempty"`
	// SentAt is when the message was first sent to its source queue.
	SentAt time.Time `json:"sentAt"`
	// ReceiveCount is how often it has been received, this listing included.
	ReceiveCount int `json:"receiveCount"`
	// Body is the message body (sign and assemble messages hold no payment data).
	Body string `json:"body"`
	// State is the session's state now, filled in by the caller.
	State string `json:"state,omitempty"`

	receipt string
}

func decodeMessage(queue string, m types.Message) DLQMessage {
	d := DLQMessage{Queue: queue, ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), receipt: aws.ToString(m.ReceiptHandle)}
	if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
		d.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		d.SentAt = time.UnixMilli(ms)
	}
	var b struct {
		SessionID string `json:"sessionID"`
		Digest    string `json:"digest"`
		Deadline  int64  `json:"deadline"`
		Replay    int    `json:"replay"`
	}
	if json.Unmarshal([]byte(d.Body), &b) == nil {
		d.SessionID, d.Digest, d.Replay = b.SessionID, b.Digest, b.Replay
		if b.Deadline > 0 {
			d.Deadline = time.UnixMilli(b.Deadline)
		}
	}
	return d
}

// Depth returns the approximate number of messages in the dead-letter
// queue: visible, and in flight (received and hidden).
func (d *DLQ) Depth(ctx context.Context) (visible, inFlight int, err error) {
	out, err := d.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(d.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("%s dead-letter queue: %w", d.Name, err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight, nil
}

// listHide is how long List hides the messages it has seen while it looks
// for more; it makes them visible again as soon as it is done.
const listHide = 30 * time.Second

// emptyReceives is how many receives in a row must come back empty before
// a queue counts as read through (SQS samples its servers).
const emptyReceives = 2

// List returns up to max messages of the dead-letter queue without
// removing any. It receives them with a short visibility timeout (so that
// each is seen once while listing) and, when done, makes every one visible
// again at once; if List is interrupted they reappear within 30 seconds on
// their own. Receiving counts as a receive: ReceiveCount grows by one.
func (d *DLQ) List(ctx context.Context, max int) ([]DLQMessage, error) {
	seen := map[string]bool{}
	var out []DLQMessage
	empty := 0
	for try := 0; len(out) < max && empty < emptyReceives && try < max/10+20; try++ {
		msgs, err := d.receive(ctx, min(10, max-len(out)), listHide)
		if err != nil {
			d.release(context.WithoutCancel(ctx), out)
			return nil, err
		}
		fresh := 0
		for _, m := range msgs {
			dm := decodeMessage(d.Name, m)
			if seen[dm.ID] {
				continue
			}
			seen[dm.ID] = true
			out = append(out, dm)
			fresh++
		}
		if fresh == 0 {
			empty++
		} else {
			empty = 0
		}
	}
	d.release(context.WithoutCancel(ctx), out)
	return out, nil
}

// release makes received messages visible again.
func (d *DLQ) release(ctx context.Context, msgs []DLQMessage) {
	for start := 0; start < len(msgs); start += 10 {
		var entries []types.ChangeMessageVisibilityBatchRequestEntry
		for i, m := range msgs[start:min(start+10, len(msgs))] {
			if m.receipt == "" {
				continue
			}
			entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: 0})
		}
		if len(entries) == 0 {
			continue
		}
		// A failure here only delays the messages by listHide.
		_, _ = d.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(d.URL), Entries: entries})
	}
	for i := range msgs {
		msgs[i].receipt = ""
	}
}

func (d *DLQ) receive(ctx context.Context, n int, hide time.Duration) ([]types.Message, error) {
	out, err := d.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(d.URL),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             1,
		VisibilityTimeout:           int32(hide / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("%s dead-letter queue: receive: %w", d.Name, err)
	}
	return out.Messages, nil
}

// RedriveResult counts what a redrive did.
type RedriveResult struct {
	Queue string `json:"queue"`
	// Moved messages were sent to the source queue and deleted from the DLQ.
	Moved int `json:"moved"`
	// Dropped messages were deleted without being sent: keep said no.
	Dropped int `json:"dropped"`
	// Messages lists what was moved or dropped.
	Messages []DLQMessage `json:"messages"`
}

// redriveHide is how long a message being moved stays hidden; a redrive
// interrupted between send and delete leaves a copy that reappears then.
const redriveHide = 60 * time.Second

// Redrive moves up to max messages from the dead-letter queue back to the
// source queue: each is sent first and deleted after, so a failure in
// between leaves a duplicate (which the pipeline tolerates), never a loss.
// keep, when not nil, decides per message; a message it refuses is deleted
// without being sent (a sign job made stale by a replay). A message whose
// send fails is made visible again and the redrive stops.
func (d *DLQ) Redrive(ctx context.Context, max int, keep func(DLQMessage) (bool, string)) (RedriveResult, error) {
	res := RedriveResult{Queue: d.Name, Messages: []DLQMessage{}}
	empty := 0
	for try := 0; res.Moved+res.Dropped < max && empty < emptyReceives && try < max/10+20; try++ {
		msgs, err := d.receive(ctx, min(10, max-res.Moved-res.Dropped), redriveHide)
		if err != nil {
			return res, err
		}
		if len(msgs) == 0 {
			empty++
			continue
		}
		empty = 0
		for i, m := range msgs {
			dm := decodeMessage(d.Name, m)
			ok, why := true, ""
			if keep != nil {
				ok, why = keep(dm)
			}
			if ok {
				if _, err := d.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.Source), MessageBody: m.Body}); err != nil {
					rest := make([]DLQMessage, 0, len(msgs)-i)
					for _, r := range msgs[i:] {
						rest = append(rest, decodeMessage(d.Name, r))
					}
					d.release(context.WithoutCancel(ctx), rest)
					return res, fmt.Errorf("%s: send back to the source queue: %w", d.Name, err)
				}
			}
			if _, err := d.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return res, fmt.Errorf("%s: delete from the dead-letter queue after sending (it comes back in %s: a duplicate): %w", d.Name, redriveHide, err)
			}
			dm.receipt = ""
			if ok {
				res.Moved++
			} else {
				dm.State = why
				res.Dropped++
			}
			res.Messages = append(res.Messages, dm)
		}
	}
	return res, nil
}

// Annotate fills in the present state of each message's session.
func (s *Service) Annotate(ctx context.Context, msgs []DLQMessage) error {
	for i, m := range msgs {
		if m.SessionID == "" {
			continue
		}
		v, err := s.store.GetRequestView(ctx, m.SessionID)
		switch {
		case errors.Is(err, ceb179.ErrNotFound):
			msgs[i].State = "unknown session"
		case err != nil:
			return err
		default:
			msgs[i].State = string(v.State)
		}
	}
	return nil
}

// KeepSignJob decides, for a redrive of the sign dead-letter queue, whether
// a sign job is still worth signing: a job whose digest is no longer the
// session's pending upload (a replay assembled it again) is dropped, since
// the upload would refuse its signature, and on its last delivery could
// fail the replayed session.
func (s *Service) KeepSignJob(ctx context.Context) func(DLQMessage) (bool, string) {
	return func(m DLQMessage) (bool, string) {
		if m.SessionID == "" || m.Digest == "" {
			return true, ""
		}
		p, err := s.store.GetPending(ctx, m.SessionID)
		if err != nil {
			return true, ""
		}
		if p.Digest != m.Digest {
			return false, fmt.Sprintf("stale: the session was assembled again (replay %d)", p.Replay)
		}
		return true, ""
	}
}
