package bridge

import (
	"context"
	"time"
)

// Queue is the sign queue as the bridge uses it: long-poll receive, delete
// after a final answer, and visibility changes.
type Queue interface {
	// Receive waits up to wait for at most max messages and hides them
	// for visibility.
	Receive(ctx context.Context, max int, wait, visibility time.Duration) ([]Message, error)
	// Delete removes a message for good.
	Delete(ctx context.Context, receipt string) error
	// ChangeVisibility sets the visibility timeout of messages, counted
	// from now: to keep them hidden while they wait, or to give them back.
	ChangeVisibility(ctx context.Context, receipts []string, visibility time.Duration) error
}

// QueueDepth is implemented by queues that can tell how many messages they
// hold; the status endpoint reports it.
type QueueDepth interface {
	// Depth returns the approximate number of messages waiting (visible)
	// and in flight (received by some consumer, not yet deleted).
	Depth(ctx context.Context) (waiting, inFlight int, err error)
}

// Message is one received sign-queue message.
type Message struct {
	// ID is the queue's message id.
	ID string
	// Receipt is the receipt handle for Delete and ChangeVisibility.
	Receipt string
	// Body is the sign job JSON.
	Body string
	// ReceiveCount is how many times the message was received.
	ReceiveCount int
}

// Uploader is the upload function as the bridge calls it: one operation
// fetches the exact sign source, the other uploads the signature.
type Uploader interface {
	// Source returns the sign source of a session (invoke op "source").
	Source(ctx context.Context, sessionID string) (Source, error)
	// Upload hands over a signature (invoke op "upload").
	Upload(ctx context.Context, req UploadRequest) (UploadResult, error)
}

// SignJob is the body of a sign-queue message.
type SignJob struct {
	// SessionID is customs' sessionID of the request.
	SessionID string `json:"sessionID"`
	// EbpCode is the platform code whose certificate must sign.
	EbpCode string `json:"ebpCode"`
	// Deadline is when the upload is due, in ms since the epoch.
	Deadline int64 `json:"deadline"`
	// Digest is the hex SHA-256 of the sign source.
	Digest string `json:"digest"`
}

// SourceRequest is the payload of the "source" invoke.
type SourceRequest struct {
	// Op is "source".
	Op string `json:"op"`
	// SessionID is the session whose sign source is wanted.
	SessionID string `json:"sessionID"`
}

// Source is the answer of the "source" invoke.
type Source struct {
	// SessionID echoes the request.
	SessionID string `json:"sessionID"`
	// EbpCode is the session's platform code.
	EbpCode string `json:"ebpCode"`
	// SignSource is the exact text to sign (buyer data: never logged).
	SignSource string `json:"signSource"`
	// Digest is the hex SHA-256 of SignSource.
	Digest string `json:"digest"`
	// Deadline is when the upload is due, in ms since the epoch.
	Deadline int64 `json:"deadline"`
	// State is the session's state. A session in a final state comes
	// with an empty SignSource: there is nothing to sign.
	State string `json:"state,omitempty"`
}

// UploadRequest is the payload of the "upload" invoke.
type UploadRequest struct {
	// Op is "upload".
	Op string `json:"op"`
	// SessionID is the session signed.
	SessionID string `json:"sessionID"`
	// Digest is the digest of the sign source that was signed.
	Digest string `json:"digest"`
	// CertNo is the certNo of the signing certificate.
	CertNo string `json:"certNo"`
	// SignValue is the base64 signature.
	SignValue string `json:"signValue"`
	// LastDelivery is set when the message's receive count reached the
	// queue's maxReceiveCount: the upload function then answers FAILED
	// rather than RETRY.
	LastDelivery bool `json:"lastDelivery,omitempty"`
}

// Upload states answered by the upload function.
const (
	StateAccepted = "ACCEPTED"
	StateRejected = "REJECTED"
	StateFailed   = "FAILED"
	StateRetry    = "RETRY"
)

// UploadResult is the answer of the "upload" invoke.
type UploadResult struct {
	// SessionID echoes the request.
	SessionID string `json:"sessionID"`
	// State is ACCEPTED, REJECTED, FAILED or RETRY.
	State string `json:"state"`
	// Message explains the state (customs' message, a refusal).
	Message string `json:"message"`
}

// Final reports whether the state ends the job: the message is deleted.
func (r UploadResult) Final() bool {
	switch r.State {
	case StateAccepted, StateRejected, StateFailed:
		return true
	}
	return false
}
