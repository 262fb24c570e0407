// Package ops answers the operators' questions about ceb179: how the
// customs requests of a day fared (on time, late, NO_DATA, INVALID,
// REJECTED, FAILED, per ebpCode), the whole trail of one request, replaying
// a request that did not end ACCEPTED, and the dead-letter queues (list
// without losing messages, redrive back to their source queue).
//
// It reads the requests table through its byDay and byOrder indexes and
// never reads or shows payment data: a trail names the order and shows
// digests, guid and customs' answers, not the head or lists.
package ops

import (
	"context"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/settle"
)

// Store is what the operator views need of the requests table.
type Store interface {
	// RequestsOfDay calls fn with every request of a China calendar day.
	RequestsOfDay(ctx context.Context, day string, fn func(ceb179.RequestView) error) error
	// RequestsOfOrder returns every request customs made for an order.
	RequestsOfOrder(ctx context.Context, orderNo string) ([]ceb179.RequestView, error)
	// GetRequestView returns one request item.
	GetRequestView(ctx context.Context, sessionID string) (ceb179.RequestView, error)
	// EbpCodes returns the ebpCode of the pending upload of each session that has one.
	EbpCodes(ctx context.Context, sessionIDs []string) (map[string]string, error)
	// GetPending returns a session's assembled upload.
	GetPending(ctx context.Context, sessionID string) (ceb179.Pending, error)
	// EarlierPendings returns the assembled uploads replays replaced.
	EarlierPendings(ctx context.Context, sessionID string) ([]ceb179.Pending, error)
	// ListAttempts returns a session's upload attempts, oldest first.
	ListAttempts(ctx context.Context, sessionID string) ([]ceb179.Attempt, error)
	// BeginReplay resets a request for a replay and records it.
	BeginReplay(ctx context.Context, r ceb179.Replay) (ceb179.RequestView, error)
}

// Sender puts a message on a queue (the assemble queue, for replays).
type Sender interface {
	Send(ctx context.Context, v any) error
}

// Service answers the operator commands and the status page.
type Service struct {
	store    Store
	assemble Sender
	now      func() time.Time
	window   time.Duration
	missing  func(context.Context) (settle.MissingReport, error)
}

// Option changes a Service made by New.
type Option func(*Service)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithWindow sets how long a replay has to reach customs (default ceb179.Window).
func WithWindow(d time.Duration) Option { return func(s *Service) { s.window = d } }

// WithMissing makes Status report the declared orders still without a
// payment record, as find (the settler's Missing pass) finds them.
func WithMissing(find func(context.Context) (settle.MissingReport, error)) Option {
	return func(s *Service) { s.missing = find }
}

// New returns a service over store; assemble (nil: replays refused) is the
// assemble queue replays are sent to.
func New(store Store, assemble Sender, opts ...Option) *Service {
	s := &Service{store: store, assemble: assemble, now: time.Now, window: ceb179.Window}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Now returns the service's clock reading.
func (s *Service) Now() time.Time { return s.now() }
