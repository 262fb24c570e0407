package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/queue"
)

// DeadLetters is a dead-letter queue as the operator commands read and
// redrive it (queue.DeadLetters).
type DeadLetters interface {
	// Peek returns up to max messages without removing any.
	Peek(ctx context.Context, max int) ([]queue.Message, error)
	// Redrive moves up to max messages back to the source queue; keep
	// decides per message, and a message it refuses is deleted unsent.
	Redrive(ctx context.Context, max int, keep func(queue.Message) bool) (moved, dropped []queue.Message, err error)
}

// DLQ is the dead-letter queue of one of the pipeline's queues.
type DLQ struct {
	// Name is the source queue's role: "assemble" or "sign".
	Name string
	// Queue is the dead-letter queue.
	Queue DeadLetters
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
}

// decodeMessage reads what a dead-lettered message of the queue name says.
func decodeMessage(name string, m queue.Message) DLQMessage {
	d := DLQMessage{Queue: name, ID: m.ID, Body: m.Body, ReceiveCount: m.ReceiveCount, SentAt: m.SentAt}
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

// List returns up to max messages of the dead-letter queue without
// removing any (see queue.Queue.Peek: listing counts as a receive).
func (d DLQ) List(ctx context.Context, max int) ([]DLQMessage, error) {
	msgs, err := d.Queue.Peek(ctx, max)
	if err != nil {
		return nil, fmt.Errorf("%s dead-letter queue: %w", d.Name, err)
	}
	out := make([]DLQMessage, len(msgs))
	for i, m := range msgs {
		out[i] = decodeMessage(d.Name, m)
	}
	return out, nil
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

// Redrive moves up to max messages from the dead-letter queue back to the
// source queue, each sent first and deleted after (see
// queue.DeadLetters.Redrive). keep, when not nil, decides per message; a
// message it refuses is deleted without being sent (a sign job made stale
// by a replay), with keep's reason as its State. It returns what it did
// until it stopped, also when it fails.
func (d DLQ) Redrive(ctx context.Context, max int, keep func(DLQMessage) (bool, string)) (RedriveResult, error) {
	// Messages are reported in the order they were dealt with.
	var (
		seen []DLQMessage
		why  = map[string]string{}
	)
	moved, dropped, err := d.Queue.Redrive(ctx, max, func(m queue.Message) bool {
		dm := decodeMessage(d.Name, m)
		seen = append(seen, dm)
		if keep == nil {
			return true
		}
		ok, reason := keep(dm)
		if !ok {
			why[m.ID] = reason
		}
		return ok
	})
	done := map[string]bool{}
	for _, m := range append(moved, dropped...) {
		done[m.ID] = true
	}
	res := RedriveResult{Queue: d.Name, Moved: len(moved), Dropped: len(dropped), Messages: []DLQMessage{}}
	for _, dm := range seen {
		if done[dm.ID] {
			dm.State = why[dm.ID]
			res.Messages = append(res.Messages, dm)
		}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", d.Name, err)
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
