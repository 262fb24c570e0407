package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ceb179/ceb179"
)

// Trail is everything recorded about one customs request, without payment data.
type Trail struct {
	// Request is the request item.
	Request ceb179.RequestView `json:"request"`
	// Outcome classifies it as the status does.
	Outcome Outcome `json:"outcome"`
	// Assembled is the pending upload (nil when never assembled).
	Assembled *Assembled `json:"assembled,omitempty"`
	// Attempts are the posts to customs, oldest first.
	Attempts []Attempt `json:"attempts"`
	// Events is the trail in time order, one line each.
	Events []Event `json:"events"`
}

// Assembled is what operators see of a pending upload: identifiers and
// digests, never the head or lists.
type Assembled struct {
	EbpCode     string    `json:"ebpCode"`
	GUID        string    `json:"guid"`
	ServiceTime string    `json:"serviceTime"`
	Digest      string    `json:"digest"`
	Deadline    time.Time `json:"deadline"`
	CreatedAt   time.Time `json:"createdAt"`
	Replay      int       `json:"replay"`
	// SignJob is the sign job assemble sent for it (no payment data).
	SignJob ceb179.SignJob `json:"signJob"`
}

// Attempt is one post to customs as operators see it.
type Attempt struct {
	At         time.Time      `json:"at"`
	N          int            `json:"n"`
	Outcome    ceb179.Outcome `json:"outcome"`
	HTTPStatus int            `json:"httpStatus"`
	Code       string         `json:"code,omitempty"`
	Message    string         `json:"message,omitempty"`
	Error      string         `json:"error,omitempty"`
	LatencyMs  int64          `json:"latencyMs"`
	Digest     string         `json:"digest"`
	BodyDigest string         `json:"bodyDigest"`
	CertNo     string         `json:"certNo"`
	Owner      string         `json:"owner"`
}

// Event is one step of a trail.
type Event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// Trails returns the trail of the request with sessionID key or, when
// there is none, of every request customs made for order key (oldest
// first). It returns ceb179.ErrNotFound, wrapped, when neither matches.
func (s *Service) Trails(ctx context.Context, key string) ([]Trail, error) {
	if key == "" {
		return nil, fmt.Errorf("no such request: empty sessionID or orderNo: %w", ceb179.ErrNotFound)
	}
	var views []ceb179.RequestView
	v, err := s.store.GetRequestView(ctx, key)
	switch {
	case err == nil:
		views = append(views, v)
	case errors.Is(err, ceb179.ErrNotFound):
		if views, err = s.store.RequestsOfOrder(ctx, key); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if len(views) == 0 {
		return nil, fmt.Errorf("no such request: %s is neither a sessionID nor an orderNo customs asked for: %w", key, ceb179.ErrNotFound)
	}
	out := make([]Trail, 0, len(views))
	for _, v := range views {
		t, err := s.trail(ctx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Trail returns the trail of one session.
func (s *Service) Trail(ctx context.Context, sessionID string) (Trail, error) {
	v, err := s.store.GetRequestView(ctx, sessionID)
	if errors.Is(err, ceb179.ErrNotFound) {
		return Trail{}, fmt.Errorf("no such request %s: %w", sessionID, ceb179.ErrNotFound)
	}
	if err != nil {
		return Trail{}, err
	}
	return s.trail(ctx, v)
}

func (s *Service) trail(ctx context.Context, v ceb179.RequestView) (Trail, error) {
	t := Trail{Request: v, Outcome: OutcomeOf(v, s.now()), Attempts: []Attempt{}}
	ev := func(at time.Time, format string, args ...any) {
		if !at.IsZero() {
			t.Events = append(t.Events, Event{At: at, What: fmt.Sprintf(format, args...)})
		}
	}
	over := ""
	if v.Priority != ceb179.PriorityNormal {
		over = "; over its order's daily cap: signed after the requests within it"
	}
	ev(v.ReceivedAt, "request received for order %s (customs serviceTime %d), due by %s%s", v.OrderNo, v.ServiceTime, clock(v.Deadline), over)
	earlier, err := s.store.EarlierPendings(ctx, v.SessionID)
	if err != nil {
		return Trail{}, err
	}
	for _, p := range earlier {
		what := "assembled"
		if p.Replay > 0 {
			what = fmt.Sprintf("assembled again for replay %d", p.Replay)
		}
		ev(p.CreatedAt, "%s: ebpCode %s, guid %s, upload serviceTime %s; sign job sent (digest %s, due %s)",
			what, p.EbpCode, p.GUID, p.ServiceTime, short(p.Digest), clock(p.Deadline))
	}
	p, err := s.store.GetPending(ctx, v.SessionID)
	switch {
	case err == nil:
		t.Assembled = &Assembled{EbpCode: p.EbpCode, GUID: p.GUID, ServiceTime: p.ServiceTime, Digest: p.Digest,
			Deadline: p.Deadline, CreatedAt: p.CreatedAt, Replay: p.Replay,
			SignJob: ceb179.SignJob{SessionID: p.SessionID, EbpCode: p.EbpCode, Deadline: p.Deadline.UnixMilli(), Digest: p.Digest}}
		what := "assembled"
		if p.Replay > 0 {
			what = fmt.Sprintf("assembled again for replay %d", p.Replay)
		}
		ev(p.CreatedAt, "%s: ebpCode %s, guid %s, upload serviceTime %s; sign job sent (digest %s, due %s)",
			what, p.EbpCode, p.GUID, p.ServiceTime, short(p.Digest), clock(p.Deadline))
	case !errors.Is(err, ceb179.ErrNotFound):
		return Trail{}, err
	}
	atts, err := s.store.ListAttempts(ctx, v.SessionID)
	if err != nil {
		return Trail{}, err
	}
	for i, a := range atts {
		t.Attempts = append(t.Attempts, Attempt{At: a.At, N: a.N, Outcome: a.Outcome, HTTPStatus: a.HTTPStatus, Code: a.Code,
			Message: a.Message, Error: a.Error, LatencyMs: a.Latency.Milliseconds(), Digest: a.Digest,
			BodyDigest: a.BodyDigest, CertNo: a.CertNo, Owner: a.Owner})
		answer := fmt.Sprintf("HTTP %d, customs %s %q", a.HTTPStatus, a.Code, a.Message)
		if a.Error != "" {
			answer = "no answer: " + a.Error
		}
		// Numbered across the session (a.N counts within one invocation).
		ev(a.At, "upload attempt %d (certNo %s, digest %s): %s, %s in %d ms", i+1, a.CertNo, short(a.Digest), a.Outcome, answer, a.Latency.Milliseconds())
	}
	if v.Replays > 0 {
		ev(v.LastReplayAt, "replay %d asked by %s: %s", v.Replays, v.LastReplayBy, v.LastReplayWhy)
	}
	if v.Settles > 0 {
		ev(v.LastSettleAt, "settler (action %d on this request): %s", v.Settles, v.LastSettleWhy)
	}
	slices.SortStableFunc(t.Events, func(a, b Event) int { return cmp.Compare(a.At.UnixMilli(), b.At.UnixMilli()) })
	last := cmp.Or(v.LastAttemptAt, v.ReceivedAt)
	for _, e := range t.Events {
		last = maxTime(last, e.At)
	}
	now := fmt.Sprintf("now %s (%s)", v.State, t.Outcome)
	if v.Reason != "" {
		now += ": " + v.Reason
	}
	t.Events = append(t.Events, Event{At: last, What: now})
	return t, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// clock formats t as a China clock time with milliseconds.
func clock(t time.Time) string { return t.In(ceb179.China).Format("2006-01-02 15:04:05.000") }

// short abbreviates a hex digest.
func short(d string) string {
	if len(d) > 12 {
		return d[:12] + "…"
	}
	return d
}
