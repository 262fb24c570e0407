package bridge

import (
	"context"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/queue"
)

// Queue is the sign queue as the bridge uses it: long-poll receive, delete
// after a final answer, and visibility changes. The shared SQS adapter,
// *queue.Queue, is it; it needs sqs:ReceiveMessage, sqs:DeleteMessage and
// sqs:ChangeMessageVisibility (which also allows the batch call) on the
// sign queue.
type Queue interface {
	// Receive waits up to wait for at most max messages and hides them
	// for visibility. A message's body is a sign job (a ceb179.SignJob).
	Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]queue.Message, error)
	// Delete removes a message for good.
	Delete(ctx context.Context, receiptHandle string) error
	// ChangeVisibilities sets the visibility timeout of messages, counted
	// from now: to keep them hidden while they wait, or to give them back.
	ChangeVisibilities(ctx context.Context, receiptHandles []string, visibility time.Duration) error
}

// QueueDepth is implemented by queues that can tell how many messages they
// hold (*queue.Queue, with sqs:GetQueueAttributes); the status endpoint
// reports it.
type QueueDepth interface {
	// Depth returns the approximate number of messages waiting (visible)
	// and in flight (received by some consumer, not yet deleted).
	Depth(ctx context.Context) (waiting, inFlight int, err error)
}

var (
	_ Queue      = (*queue.Queue)(nil)
	_ QueueDepth = (*queue.Queue)(nil)
)

// Uploader is the upload function as the bridge calls it: one operation
// fetches the exact sign source, the other uploads the signature. The
// messages are the shared contract of package ceb179.
type Uploader interface {
	// Source returns the sign source of a session (invoke op "source").
	Source(ctx context.Context, sessionID string) (ceb179.SourceAnswer, error)
	// Upload hands over a signature (invoke op "upload"; the Uploader sets
	// req.Op).
	Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error)
}
