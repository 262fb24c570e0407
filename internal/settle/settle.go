// Package settle makes sure every customs request reaches a final state.
// The settler runs every minute (the settle function, on an EventBridge
// schedule; `ceb179 local` runs it too) and acts on what would otherwise be
// stranded:
//
//   - a request RECEIVED but never queued for assembly (ingest recorded it
//     and answered 20003, and customs did not ask again): it is queued;
//   - a request still RECEIVED past its deadline although it was queued
//     (its assemble message was lost to the dead-letter queue): it is
//     queued again, and assemble marks it NO_DATA or assembles it late;
//   - a sign job in the sign queue's dead-letter queue whose request is
//     still ASSEMBLED or SIGNED inside its give-up window (no usable signer,
//     the sign source could not be fetched, the upload did not finish in
//     the job's deliveries): the same job (same digest, same serviceTime)
//     is sent to the sign queue again; jobs of final or replayed sessions
//     are dropped;
//   - a request not final past its give-up window (its deadline plus
//     UPLOAD_GIVE_UP_MINUTES): it becomes FAILED with the reason, unless an
//     upload invocation holds it right now.
//
// It finds the requests that are not final in the requests table's open
// index, which holds nothing else (a request leaves it with its final
// write), oldest deadline first, in bounded pages: what one run reads
// grows with what is open, never with the table's history, and a replayed
// request is found the same way whatever day it was received.
//
// A run is a list of independent passes (the dead letters, the one-off
// backfill of the open index, the open requests, and the Missing pass
// when it is configured); a pass that fails is
// logged and counted and the next one runs. Within a pass every action is
// independent too: one that fails is logged, counted (metric
// ActionFailed) and skipped. Every action is a conditional write, so a
// run repeated or run twice at once does no harm; each is recorded on the
// request (settles, lastSettleAt, lastSettleWhy) and shows in `ceb179
// show`. A run does at most MaxActions actions, reads at most MaxReads
// items of the open index and MaxDeadLetters dead-lettered jobs; the rest
// wait for the next run. Each run reports how many requests are stuck past
// their deadline (metric StuckPastDeadline), which an alarm watches.
package settle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/queue"
)

// Metric names recorded by the settler (namespace ceb179, dimension
// Component=settle; docs/operations.md lists them all).
const (
	// MetricQueued counts requests queued for assembly by the settler.
	MetricQueued = "Queued"
	// MetricResent counts dead-lettered sign jobs sent again.
	MetricResent = "SignJobResent"
	// MetricDropped counts dead-lettered sign jobs dropped (session final or replayed).
	MetricDropped = "SignJobDropped"
	// MetricFailed counts requests made FAILED past their give-up window.
	MetricFailed = "Failed"
	// MetricStuck is, per run, the number of requests not final some
	// minutes past their deadline.
	MetricStuck = "StuckPastDeadline"
	// MetricActionFailed counts actions and passes of the settler that
	// failed (logged and skipped; the next run tries again).
	MetricActionFailed = "ActionFailed"
	// MetricBackfilled counts requests of an earlier version put into the
	// open index by the backfill.
	MetricBackfilled = "Backfilled"
)

// Defaults of a Settler.
const (
	// DefaultInterval is how often the settler runs.
	DefaultInterval = time.Minute
	// DefaultGrace is how long a recorded request may wait for ingest to
	// queue it before the settler does.
	DefaultGrace = 15 * time.Second
	// DefaultStuckAfter is how long past its deadline a request counts as
	// stuck (and, still RECEIVED, is queued again).
	DefaultStuckAfter = 5 * time.Minute
	// DefaultMaxActions bounds the actions of one run.
	DefaultMaxActions = 200
	// DefaultMaxDeadLetters bounds the dead-lettered jobs one run reads.
	DefaultMaxDeadLetters = 100
	// DefaultMaxReads bounds the items one run reads from the open index.
	DefaultMaxReads = 20_000
	// DefaultBackfillReads bounds the items one run of the open index
	// backfill reads (the backfill runs until it is done, then reads one
	// item a run).
	DefaultBackfillReads = 10_000
)

// Store is what the settler needs of the requests table.
type Store interface {
	// OpenRequests calls fn with the requests not final whose deadline is
	// after from and not after until, oldest first, reading at most limit
	// items; it reports whether items were left.
	OpenRequests(ctx context.Context, from, until time.Time, limit int, fn func(ceb179.RequestView) error) (bool, error)
	// BackfillOpen puts the open requests of days first to last that an
	// earlier version recorded without the open index into it, reading at
	// most limit items a call; it reports whether it is done and how many
	// it indexed in this call.
	BackfillOpen(ctx context.Context, first, last string, limit int) (bool, int, error)
	GetRequestView(ctx context.Context, sessionID string) (ceb179.RequestView, error)
	GetPending(ctx context.Context, sessionID string) (ceb179.Pending, error)
	MarkEnqueued(ctx context.Context, sessionID string) error
	NoteSettle(ctx context.Context, sessionID, why string, at time.Time, t ceb179.Transition) (bool, error)
	SettleFailed(ctx context.Context, sessionID, reason string, at time.Time) (bool, error)
}

// Sender puts a message on a queue.
type Sender interface {
	Send(ctx context.Context, v any) error
}

// DeadLetters is the sign queue's dead-letter queue.
type DeadLetters interface {
	Receive(ctx context.Context, n int, wait, visibility time.Duration) ([]queue.Message, error)
	Delete(ctx context.Context, receiptHandle string) error
	ExtendVisibility(ctx context.Context, receiptHandle string, d time.Duration) error
}

// Settler settles stranded requests. Build it with New.
type Settler struct {
	store          Store
	assemble       Sender
	sign           Sender
	dead           DeadLetters
	log            *slog.Logger
	metrics        *metrics.Recorder
	now            func() time.Time
	window         time.Duration
	giveUp         time.Duration
	grace          time.Duration
	stuckAfter     time.Duration
	maxActions     int
	maxDeadLetters int
	maxReads       int
	backfillReads  int
	missing        *Missing
}

// Option changes a Settler made by New.
type Option func(*Settler)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Settler) { s.log = l } }

// WithMetrics sets the metrics recorder (default none).
func WithMetrics(m *metrics.Recorder) Option { return func(s *Settler) { s.metrics = m } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Settler) { s.now = now } }

// WithWindow sets the time customs allows for an upload (default
// ceb179.Window); a replay's deadline is its start plus the window.
func WithWindow(d time.Duration) Option { return func(s *Settler) { s.window = d } }

// WithGiveUp sets how long after its deadline a request is still worked on
// (default ceb179.GiveUpAfter; the functions' wiring gives the upload
// function and the settler the same UPLOAD_GIVE_UP_MINUTES).
func WithGiveUp(d time.Duration) Option { return func(s *Settler) { s.giveUp = d } }

// WithTimes sets the grace before an unqueued request is queued and how
// long past its deadline a request counts as stuck (defaults DefaultGrace
// and DefaultStuckAfter).
func WithTimes(grace, stuckAfter time.Duration) Option {
	return func(s *Settler) { s.grace, s.stuckAfter = grace, stuckAfter }
}

// WithLimits bounds one run (defaults DefaultMaxActions and DefaultMaxDeadLetters).
func WithLimits(actions, deadLetters int) Option {
	return func(s *Settler) { s.maxActions, s.maxDeadLetters = max(actions, 1), max(deadLetters, 0) }
}

// WithReads bounds the items one run reads from the open index and from
// the byDay index for the backfill (defaults DefaultMaxReads and
// DefaultBackfillReads).
func WithReads(open, backfill int) Option {
	return func(s *Settler) { s.maxReads, s.backfillReads = max(open, 1), max(backfill, 1) }
}

// WithMissing runs the Missing pass m too, on every run, independent of
// the other passes: neither's failure keeps the other from running.
func WithMissing(m *Missing) Option { return func(s *Settler) { s.missing = m } }

// New returns a settler over the requests table, the assemble and sign
// queues and the sign queue's dead-letter queue.
func New(store Store, assemble, sign Sender, dead DeadLetters, opts ...Option) *Settler {
	s := &Settler{store: store, assemble: assemble, sign: sign, dead: dead, log: slog.Default(), now: time.Now,
		window: ceb179.Window, giveUp: ceb179.GiveUpAfter, grace: DefaultGrace, stuckAfter: DefaultStuckAfter,
		maxActions: DefaultMaxActions, maxDeadLetters: DefaultMaxDeadLetters,
		maxReads: DefaultMaxReads, backfillReads: DefaultBackfillReads}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Report is what one run found and did.
type Report struct {
	// Scanned is how many requests not final were looked at.
	Scanned int `json:"scanned"`
	// Queued counts requests queued (or queued again) for assembly.
	Queued int `json:"queued"`
	// Resent counts dead-lettered sign jobs sent again.
	Resent int `json:"resent"`
	// Dropped counts dead-lettered sign jobs dropped.
	Dropped int `json:"dropped"`
	// Failed counts requests made FAILED past their give-up window.
	Failed int `json:"failed"`
	// Stuck counts requests not final past their deadline plus the stuck
	// time (of those read, when Truncated).
	Stuck int `json:"stuck"`
	// Errors counts the actions and passes that failed and were skipped.
	Errors int `json:"errors"`
	// Backfilled counts requests the open index backfill indexed in this run.
	Backfilled int `json:"backfilled"`
	// Truncated says the run stopped at one of its limits with work left.
	Truncated bool `json:"truncated"`
	// Missing is what the Missing pass found (nil without it).
	Missing *MissingReport `json:"missing,omitempty"`
}

func (r Report) actions() int { return r.Queued + r.Resent + r.Dropped + r.Failed }

// open are the states a request settles from.
// Handle runs the settler once; it is the settle function's handler (the
// scheduled event carries nothing it needs).
func (s *Settler) Handle(ctx context.Context, _ json.RawMessage) (Report, error) {
	return s.Run(ctx)
}

// pass is one independent part of a run.
type pass struct {
	name string
	run  func(ctx context.Context, rep *Report) error
}

// passes are the parts of a run, in order. Each is independent: one that
// fails does not keep the others from running.
func (s *Settler) passes() []pass {
	ps := []pass{
		{"dead-lettered sign jobs", s.deadLetters},
		{"open index backfill", s.backfill},
		{"open requests", s.openRequests},
	}
	if s.missing != nil {
		ps = append(ps, pass{"declared orders without a payment record", s.missingOrders})
	}
	return ps
}

// missingOrders runs the Missing pass.
func (s *Settler) missingOrders(ctx context.Context, rep *Report) error {
	m, err := s.missing.Run(ctx)
	rep.Missing = &m
	return err
}

// Run runs every pass once: the sign queue's dead letters, the open index
// backfill, the requests not final, and the Missing pass when there is
// one. A pass that fails is logged and counted and the next one runs; the
// failures are returned together, once every pass ran. What was done
// stays done.
func (s *Settler) Run(ctx context.Context) (Report, error) {
	var rep Report
	var errs []error
	for _, p := range s.passes() {
		if err := p.run(ctx, &rep); err != nil {
			s.failure(ctx, &rep, p.name, "", err)
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	err := errors.Join(errs...)
	s.metrics.Add(MetricStuck, float64(rep.Stuck))
	level := slog.LevelInfo
	if rep.Stuck > 0 || rep.Errors > 0 {
		level = slog.LevelWarn
	}
	attrs := []any{slog.Int("scanned", rep.Scanned), slog.Int("queued", rep.Queued), slog.Int("resent", rep.Resent),
		slog.Int("dropped", rep.Dropped), slog.Int("failed", rep.Failed), slog.Int("stuck", rep.Stuck),
		slog.Int("errors", rep.Errors), slog.Int("backfilled", rep.Backfilled), slog.Bool("truncated", rep.Truncated)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.log.Log(ctx, level, "settle", attrs...)
	return rep, err
}

// failure logs and counts an action or pass that failed; the run goes on.
func (s *Settler) failure(ctx context.Context, rep *Report, what, sessionID string, err error) {
	rep.Errors++
	s.metrics.Add(MetricActionFailed, 1)
	attrs := []any{slog.String("what", what), slog.String("error", err.Error())}
	if sessionID != "" {
		attrs = append(attrs, slog.String("sessionID", sessionID))
	}
	s.log.WarnContext(ctx, "settle: failed, skipped until the next run", attrs...)
}

// Loop runs the settler every interval until ctx ends (for `ceb179 local`).
func (s *Settler) Loop(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("settle run failed", slog.String("error", err.Error()))
		}
	}
}

// deadline is when the request's upload is due: customs' deadline, or a
// replay's own when later.
func (s *Settler) deadline(v ceb179.RequestView) time.Time {
	return v.DueAt(s.window)
}

// giveUpAt is when the settler makes the request FAILED: the give-up window
// after its deadline, plus a margin (two minutes, or the window when
// shorter) for an upload invocation deciding it first.
func (s *Settler) giveUpAt(v ceb179.RequestView) time.Time {
	return s.deadline(v).Add(s.giveUp + min(2*time.Minute, s.window))
}

// deadLetters handles the sign queue's dead-lettered jobs. A job whose
// handling fails is left in place for the next run.
func (s *Settler) deadLetters(ctx context.Context, rep *Report) error {
	if s.dead == nil {
		return nil
	}
	// Messages left in place are made visible again at the end, for
	// operators (ceb179 dlq list), not read twice in this run.
	var left []string
	defer func() {
		for _, r := range left {
			_ = s.dead.ExtendVisibility(context.WithoutCancel(ctx), r, 0)
		}
	}()
	for read := 0; read < s.maxDeadLetters; {
		if rep.actions() >= s.maxActions {
			rep.Truncated = true
			return nil
		}
		msgs, err := s.dead.Receive(ctx, min(10, s.maxDeadLetters-read), 0, time.Minute)
		if err != nil {
			return fmt.Errorf("receive dead-lettered sign jobs: %w", err)
		}
		if len(msgs) == 0 {
			return nil
		}
		read += len(msgs)
		for _, m := range msgs {
			if rep.actions() >= s.maxActions {
				rep.Truncated = true
				left = append(left, m.ReceiptHandle)
				continue
			}
			done, err := s.deadLetter(ctx, m, rep)
			if err != nil {
				s.failure(ctx, rep, "dead-lettered sign job "+m.ID, "", err)
			}
			if !done {
				left = append(left, m.ReceiptHandle)
			}
		}
	}
	return nil
}

// deadLetter handles one dead-lettered job and reports whether it is done
// with (false: left in place).
func (s *Settler) deadLetter(ctx context.Context, m queue.Message, rep *Report) (bool, error) {
	var job ceb179.SignJob
	if err := json.Unmarshal([]byte(m.Body), &job); err != nil || job.SessionID == "" {
		// Not a sign job: left for an operator (ceb179 dlq list).
		s.log.Warn("settle: malformed dead-lettered sign job left in place", slog.String("messageId", m.ID))
		return false, nil
	}
	log := s.log.With(slog.String("sessionID", job.SessionID))
	v, err := s.store.GetRequestView(ctx, job.SessionID)
	if errors.Is(err, ceb179.ErrNotFound) {
		log.Warn("settle: dead-lettered sign job of an unknown session left in place")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	drop := func(why string) (bool, error) {
		if err := s.dead.Delete(ctx, m.ReceiptHandle); err != nil {
			return false, fmt.Errorf("drop dead-lettered sign job of %s: %w", job.SessionID, err)
		}
		rep.Dropped++
		s.metrics.Add(MetricDropped, 1)
		log.Info("settle: dead-lettered sign job dropped", slog.String("why", why))
		return true, nil
	}
	if v.State.Final() {
		return drop("session is " + string(v.State))
	}
	if v.State == ceb179.StateReceived {
		// Being assembled again (a replay): that assembly sends its own job.
		return drop("session is being assembled again")
	}
	p, err := s.store.GetPending(ctx, job.SessionID)
	if err != nil && !errors.Is(err, ceb179.ErrNotFound) {
		return false, err
	}
	if err != nil || p.Digest != job.Digest {
		return drop("the job's digest is not the session's assembled upload (replayed)")
	}
	now := s.now()
	if now.After(s.giveUpAt(v)) {
		if err := s.fail(ctx, v, now, rep); err != nil {
			return false, err
		}
		return drop("given up")
	}
	// Noted first, while the session is surely not final yet.
	why := fmt.Sprintf("sign job sent again: it had dead-lettered while the session was %s (%s)", v.State, v.Reason)
	ok, err := s.store.NoteSettle(ctx, job.SessionID, why, now, ceb179.Resendable)
	if err != nil {
		return false, err
	}
	if !ok {
		return drop("session settled meanwhile")
	}
	if err := s.sign.Send(ctx, job); err != nil {
		return false, fmt.Errorf("send sign job of %s again: %w", job.SessionID, err)
	}
	if err := s.dead.Delete(ctx, m.ReceiptHandle); err != nil {
		// Sent twice at worst: the upload claim posts once.
		log.Warn("settle: resent job still in the dead-letter queue", slog.String("error", err.Error()))
	}
	rep.Resent++
	s.metrics.Add(MetricResent, 1)
	log.Info("settle: sign job sent again")
	return true, nil
}

// openRequests looks at the requests not final, read from the open index
// in two ranges of deadlines, each with half the run's reads: those past
// their deadline by the stuck time (stuck: counted, queued again, given
// up), and the later ones received at least the grace ago (only one never
// queued needs anything), so that neither range starves the other.
func (s *Settler) openRequests(ctx context.Context, rep *Report) error {
	now := s.now()
	stuckUntil := now.Add(-s.stuckAfter)
	each := func(v ceb179.RequestView) error {
		if err := s.request(ctx, v, now, rep); err != nil {
			s.failure(ctx, rep, "request", v.SessionID, err)
		}
		return nil
	}
	truncated, err := s.store.OpenRequests(ctx, time.UnixMilli(0), stuckUntil, (s.maxReads+1)/2, each)
	if err != nil {
		return err
	}
	recent, err := s.store.OpenRequests(ctx, stuckUntil, now.Add(s.window-s.grace), s.maxReads/2, each)
	if err != nil {
		return err
	}
	rep.Truncated = rep.Truncated || truncated || recent
	return nil
}

// backfill puts the open requests an earlier version recorded without the
// open index into it, a bounded part per run, until it is done: the days
// that can hold such a request are those a request not final can be
// from (its deadline plus the give-up window).
func (s *Settler) backfill(ctx context.Context, rep *Report) error {
	now := s.now()
	first := ceb179.Day(now.Add(-(s.giveUp + s.window + 3*time.Minute)))
	done, n, err := s.store.BackfillOpen(ctx, first, ceb179.Day(now), s.backfillReads)
	if err != nil {
		return err
	}
	if n > 0 {
		rep.Backfilled += n
		s.metrics.Add(MetricBackfilled, float64(n))
		s.log.InfoContext(ctx, "settle: requests of an earlier version put into the open index", slog.Int("requests", n))
	}
	if !done {
		rep.Truncated = true
	}
	return nil
}

func (s *Settler) request(ctx context.Context, v ceb179.RequestView, now time.Time, rep *Report) error {
	if v.State.Final() {
		return nil
	}
	rep.Scanned++
	deadline := s.deadline(v)
	if now.After(deadline.Add(s.stuckAfter)) {
		rep.Stuck++
	}
	var act func() error
	switch {
	case now.After(s.giveUpAt(v)):
		act = func() error { return s.fail(ctx, v, now, rep) }
	case v.State != ceb179.StateReceived:
		// ASSEMBLED or SIGNED: its sign job is in the sign queue, held by
		// the bridge, or dead-lettered (handled above).
		return nil
	case !v.Enqueued && now.Sub(v.ReceivedAt) >= s.grace:
		act = func() error {
			return s.queue(ctx, v, deadline, now, "queued for assembly: ingest recorded the request but could not queue it", rep)
		}
	case v.Enqueued && now.After(deadline.Add(s.stuckAfter)) && now.Sub(v.LastSettleAt) >= s.stuckAfter:
		act = func() error {
			return s.queue(ctx, v, deadline, now, "queued for assembly again: still RECEIVED past its deadline (its assemble message was lost)", rep)
		}
	default:
		return nil
	}
	if rep.actions() >= s.maxActions {
		rep.Truncated = true
		return nil
	}
	return act()
}

// queue sends the request's assemble message (with its replay number and
// deadline after a replay) and records it.
func (s *Settler) queue(ctx context.Context, v ceb179.RequestView, deadline, now time.Time, why string, rep *Report) error {
	msg := ceb179.NewAssembleMessage(v.Request)
	if v.Replays > 0 {
		msg.Replay, msg.Deadline = v.Replays, deadline.UnixMilli()
	}
	// Noted first (while the request is surely RECEIVED: assembly can be
	// that fast); a send that fails is tried again by the next run.
	if ok, err := s.store.NoteSettle(ctx, v.SessionID, why, now, ceb179.Requeueable); err != nil || !ok {
		return err
	}
	if err := s.assemble.Send(ctx, msg); err != nil {
		return fmt.Errorf("queue %s for assembly: %w", v.SessionID, err)
	}
	if !v.Enqueued {
		if err := s.store.MarkEnqueued(ctx, v.SessionID); err != nil {
			return err
		}
	}
	rep.Queued++
	s.metrics.Add(MetricQueued, 1)
	s.log.Info("settle: queued for assembly", slog.String("sessionID", v.SessionID), slog.String("why", why))
	return nil
}

// fail makes a request past its give-up window FAILED.
func (s *Settler) fail(ctx context.Context, v ceb179.RequestView, now time.Time, rep *Report) error {
	why := map[ceb179.State]string{
		ceb179.StateReceived:  "RECEIVED: never assembled",
		ceb179.StateAssembled: "ASSEMBLED: no signature came (bridge off or no usable signer)",
		ceb179.StateSigned:    "SIGNED: customs never accepted a post",
	}[v.State]
	reason := fmt.Sprintf("settled FAILED: not uploaded by %s (deadline + %s) while %s", s.giveUpAt(v).UTC().Format(time.RFC3339), s.giveUp, why)
	if v.Reason != "" {
		reason += "; last reason: " + v.Reason
	}
	ok, err := s.store.SettleFailed(ctx, v.SessionID, reason, now)
	if err != nil || !ok {
		return err
	}
	rep.Failed++
	s.metrics.Add(MetricFailed, 1)
	s.log.Warn("settle: request FAILED", slog.String("sessionID", v.SessionID), slog.String("reason", reason))
	return nil
}
