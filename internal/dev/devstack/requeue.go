package devstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ceb179/ceb179"
)

// requeueWhy is the note a requeued request carries (ceb179 show).
const requeueWhy = "queued again when the local stack started on its kept state: the emulator forgets messages in flight"

// requeueLimit bounds the requests requeueOpen reads.
const requeueLimit = 100000

// requeueOpen puts back on the queues the work of every request not final
// whose deadline is inside its give-up window, when the stack starts on
// the state `ceb179 local --data` kept. The emulator keeps no message in
// flight across a restart: one received and not yet deleted, or handed
// back with a visibility timeout (the bridge's jobs at a stop, an unknown
// order's retries), is forgotten, where SQS would deliver it again after
// its visibility timeout. A request still RECEIVED is queued for assembly
// again; one ASSEMBLED or SIGNED gets its sign job again. Both are
// idempotent, so a message that did survive is delivered twice to no
// harm: assembly does nothing past RECEIVED, the bridge drops a job whose
// session is final, and upload posts a session once. Each request queued
// again is noted on it, as the settler notes its actions. The requests
// are read from the open index, as the settler reads them. It returns
// how many it queued.
func (s *Stack) requeueOpen(ctx context.Context, window, giveUp time.Duration) (int, error) {
	now := time.Now()
	queued := 0
	_, err := s.Store.OpenRequests(ctx, now.Add(-(giveUp + window)), now.Add(2*window), requeueLimit, func(v ceb179.RequestView) error {
		ok, err := s.requeue(ctx, v, window, now)
		if ok {
			queued++
		}
		return err
	})
	if err != nil {
		return queued, fmt.Errorf("local: queue requests not final again: %w", err)
	}
	return queued, nil
}

// requeue queues v's work again when it is not final, and reports whether
// it did.
func (s *Stack) requeue(ctx context.Context, v ceb179.RequestView, window time.Duration, now time.Time) (bool, error) {
	switch v.State {
	case ceb179.StateReceived:
		if ok, err := s.Store.NoteSettle(ctx, v.SessionID, requeueWhy, now, ceb179.Requeueable); err != nil || !ok {
			return false, err
		}
		msg := ceb179.NewAssembleMessage(v.Request)
		if v.Replays > 0 {
			msg.Replay, msg.Deadline = v.Replays, v.DueAt(window).UnixMilli()
		}
		if err := s.assembleQ.Send(ctx, msg); err != nil {
			return false, err
		}
		if !v.Enqueued {
			return true, s.Store.MarkEnqueued(ctx, v.SessionID)
		}
		return true, nil
	case ceb179.StateAssembled, ceb179.StateSigned:
		p, err := s.Store.GetPending(ctx, v.SessionID)
		if errors.Is(err, ceb179.ErrNotFound) {
			return false, nil // nothing to sign: left to the settler
		}
		if err != nil {
			return false, err
		}
		if ok, err := s.Store.NoteSettle(ctx, v.SessionID, requeueWhy, now, ceb179.Resendable); err != nil || !ok {
			return false, err
		}
		// As assemble sent it: the request's priority, the normal one
		// after an operator's replay.
		priority := v.Priority
		if v.Replays > 0 {
			priority = ceb179.PriorityNormal
		}
		return true, s.signQ.Send(ctx, p.SignJob(priority))
	}
	return false, nil
}
