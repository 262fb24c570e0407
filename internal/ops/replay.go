package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ceb179/ceb179"
)

// ReplayRequest is an operator's request to replay a session.
type ReplayRequest struct {
	// SessionID is the session to replay.
	SessionID string
	// By names the operator and Why gives the reason; both are recorded.
	By, Why string
	// Force replays a session customs accepted, or one still in progress.
	// Customs refuses a sessionID it already stored (入库失败).
	Force bool
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	SessionID string `json:"sessionID"`
	OrderNo   string `json:"orderNo"`
	// Replay is the replay's number (1 for the first replay).
	Replay int `json:"replay"`
	// PreviousState is the state the session was in.
	PreviousState ceb179.State `json:"previousState"`
	// Deadline is when the replayed upload is due.
	Deadline time.Time `json:"deadline"`
}

// Replay assembles, signs and uploads a session again: it resets the
// request (state RECEIVED, the replay recorded on the request) and sends an
// assemble message with the replay number, so that assemble builds a new
// pending upload with a new serviceTime, due one window from now. The
// root's ceb179.Replayable(r.Force) decides, here and in the store's
// conditional write alike: a session ACCEPTED or still in progress is
// refused unless r.Force, one an upload invocation holds now always.
func (s *Service) Replay(ctx context.Context, r ReplayRequest) (ReplayResult, error) {
	if s.assemble == nil {
		return ReplayResult{}, errors.New("replay: no assemble queue configured")
	}
	if strings.TrimSpace(r.By) == "" || strings.TrimSpace(r.Why) == "" {
		return ReplayResult{}, errors.New("replay: say who asks and why")
	}
	now := s.now()
	v, err := s.store.GetRequestView(ctx, r.SessionID)
	if errors.Is(err, ceb179.ErrNotFound) {
		return ReplayResult{}, fmt.Errorf("no such request %s: %w", r.SessionID, ceb179.ErrNotFound)
	}
	if err != nil {
		return ReplayResult{}, err
	}
	if err := ceb179.Replayable(r.Force).Refusal(v, now, s.window); err != nil {
		return ReplayResult{}, replayRefused(r.SessionID, v, now, s.window, err)
	}
	after, err := s.store.BeginReplay(ctx, ceb179.Replay{SessionID: r.SessionID, By: r.By, Why: r.Why, At: now, Force: r.Force, Window: s.window})
	if errors.Is(err, ceb179.ErrRefused) {
		// Changed since it was read: the store's answer is the root's.
		return ReplayResult{}, replayRefused(r.SessionID, after, now, s.window, err)
	}
	if err != nil {
		return ReplayResult{}, err
	}
	deadline := now.Add(s.window)
	msg := ceb179.AssembleMessage{SessionID: after.SessionID, OrderNo: after.OrderNo, ReceivedAt: after.ReceivedAt.UnixMilli(),
		Deadline: deadline.UnixMilli(), Replay: after.Replays}
	if err := s.assemble.Send(ctx, msg); err != nil {
		return ReplayResult{}, fmt.Errorf("replay %s: the request is reset but the assemble message was not sent (run the replay again): %w", r.SessionID, err)
	}
	return ReplayResult{SessionID: after.SessionID, OrderNo: after.OrderNo, Replay: after.Replays, PreviousState: v.State, Deadline: deadline}, nil
}

// replayRefused says why the session was not replayed, and that --force
// would replay it when it would.
func replayRefused(sessionID string, v ceb179.RequestView, now time.Time, window time.Duration, err error) error {
	if ceb179.Replayable(true).Allows(v, now, window) {
		return fmt.Errorf("session %s: %w; use --force to replay anyway", sessionID, err)
	}
	return fmt.Errorf("session %s: %w", sessionID, err)
}
