package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/queue"
)

// SQSQueue is the Queue over the sign queue, through the shared SQS
// adapter. It needs sqs:ReceiveMessage, sqs:DeleteMessage and
// sqs:ChangeMessageVisibility (which also allows the batch call) on that
// queue.
type SQSQueue struct {
	// Q is the shared SQS adapter for the sign queue.
	Q *queue.Queue
	// Client and URL serve Depth (sqs:GetQueueAttributes).
	Client *sqs.Client
	// URL is the sign queue's URL.
	URL string
}

var (
	_ Queue      = (*SQSQueue)(nil)
	_ QueueDepth = (*SQSQueue)(nil)
)

// NewSQSQueue returns the Queue for the queue at url.
func NewSQSQueue(client *sqs.Client, url string) *SQSQueue {
	return &SQSQueue{Q: queue.New(client, url), Client: client, URL: url}
}

// Depth reads ApproximateNumberOfMessages and
// ApproximateNumberOfMessagesNotVisible.
func (q *SQSQueue) Depth(ctx context.Context) (int, int, error) {
	out, err := q.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sign queue depth: %w", err)
	}
	waiting, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return waiting, inFlight, nil
}

// Receive long-polls the queue (at most 10 messages, at most 20 s).
func (q *SQSQueue) Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]Message, error) {
	in, err := q.Q.Receive(ctx, n, wait, visibility)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, len(in))
	for i, m := range in {
		msgs[i] = Message{ID: m.ID, Receipt: m.ReceiptHandle, Body: m.Body, ReceiveCount: m.ReceiveCount}
	}
	return msgs, nil
}

// Delete deletes one message.
func (q *SQSQueue) Delete(ctx context.Context, receipt string) error {
	return q.Q.Delete(ctx, receipt)
}

// ChangeVisibility changes the visibility of messages, ten a call (see
// queue.Queue.ChangeVisibilities). It fails when any message's change
// failed.
func (q *SQSQueue) ChangeVisibility(ctx context.Context, receipts []string, visibility time.Duration) error {
	return q.Q.ChangeVisibilities(ctx, receipts, visibility)
}

// LambdaUploader is the Uploader over the upload function. It needs
// lambda:InvokeFunction on that function.
type LambdaUploader struct {
	// Client is the Lambda client.
	Client *lambda.Client
	// Function is the upload function's name or ARN.
	Function string
}

var _ Uploader = (*LambdaUploader)(nil)

// Source invokes op "source".
func (u *LambdaUploader) Source(ctx context.Context, sessionID string) (ceb179.SourceAnswer, error) {
	var s ceb179.SourceAnswer
	err := u.invoke(ctx, ceb179.Invocation{Op: ceb179.OpSource, SessionID: sessionID}, &s)
	return s, err
}

// Upload invokes op "upload".
func (u *LambdaUploader) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	req.Op = ceb179.OpUpload
	var r ceb179.UploadAnswer
	err := u.invoke(ctx, req, &r)
	return r, err
}

func (u *LambdaUploader) invoke(ctx context.Context, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return err
	}
	res, err := u.Client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(u.Function), Payload: payload})
	if err != nil {
		return fmt.Errorf("invoke upload function: %w", err)
	}
	if res.FunctionError != nil {
		// The function's error text is short and safe to log ("bad
		// request: ...", "unknown session: ...", "internal error: ...").
		var fe struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.Payload, &fe)
		return fmt.Errorf("upload function error (%s): %s", aws.ToString(res.FunctionError), fe.ErrorMessage)
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		return fmt.Errorf("decode upload function answer: %w", err)
	}
	return nil
}
