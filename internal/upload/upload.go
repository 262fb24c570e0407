package upload

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/signature"
)

// Metric names recorded by the handler (namespace ceb179, dimension
// Component=upload; docs/operations.md lists them all).
const (
	// MetricAccepted counts sessions customs accepted (10000, or a
	// duplicate after an unanswered attempt of ours).
	MetricAccepted = "Accepted"
	// MetricRejected counts sessions customs rejected with a message.
	MetricRejected = "Rejected"
	// MetricFailed counts sessions that became FAILED: never delivered.
	MetricFailed = "Failed"
	// MetricOnTime counts accepted sessions whose acceptance came by the
	// request's deadline (receipt + 120 s).
	MetricOnTime = "OnTime"
	// MetricLate counts accepted sessions whose acceptance came after it.
	MetricLate = "Late"
	// MetricEndToEndLatency is the time from the request's receipt by
	// ingest to customs' acceptance, in milliseconds.
	MetricEndToEndLatency = "EndToEndLatency"
	// MetricRetry counts invocations answered RETRY after posting or
	// pacing (the bridge delivers the job again).
	MetricRetry = "Retry"
	// MetricRefused counts signed jobs refused before posting (wrong
	// digest, unregistered certificate, bad signature).
	MetricRefused = "Refused"
	// MetricRepeated counts invocations for a session already final.
	MetricRepeated = "Repeated"
	// MetricAttempts counts posts to customs.
	MetricAttempts = "Attempts"
	// MetricCustomsLatency is the time customs took to answer one post.
	MetricCustomsLatency = "CustomsLatency"
	// MetricPrepareTime is the time the checks before posting took.
	MetricPrepareTime = "PrepareTime"
)

// Store is what the handler needs from the tables.
type Store interface {
	GetRequest(ctx context.Context, sessionID string) (ceb179.Request, error)
	GetPending(ctx context.Context, sessionID string) (ceb179.Pending, error)
	ClaimUpload(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) (ceb179.UploadClaim, error)
	FinishUpload(ctx context.Context, sessionID, owner string, to ceb179.State, reason string, lastAttempt time.Time) error
	ReleaseUpload(ctx context.Context, sessionID, owner, reason string, lastAttempt time.Time) error
	NoteUpload(ctx context.Context, sessionID, reason string) error
	PutAttempt(ctx context.Context, a ceb179.Attempt) error
	ListAttempts(ctx context.Context, sessionID string) ([]ceb179.Attempt, error)
}

// Certificates finds the certificate registered with customs for an
// ebpCode under a certNo. It returns an error wrapping ErrUnknownCertificate
// when there is none.
type Certificates interface {
	Certificate(ctx context.Context, ebpCode, certNo string) (*smx509.Certificate, error)
}

// Poster posts a payExInfoStr to customs.
type Poster interface {
	Upload(ctx context.Context, payExInfoStr []byte) (customsapi.Answer, error)
}

var _ Poster = (*customsapi.Client)(nil)

// Errors returned to the invoker. Their text is safe to show: it holds no
// payment data.
var (
	// ErrBadRequest: the invocation is missing a field or names an unknown op.
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownSession: there is no request or no assembled upload for
	// the sessionID.
	ErrUnknownSession = errors.New("unknown session")
	// ErrInternal: anything else (storage unavailable, stored data
	// corrupt); the details are logged.
	ErrInternal = errors.New("internal error")
	// ErrUnknownCertificate: no certificate is registered for the ebpCode
	// under that certNo.
	ErrUnknownCertificate = errors.New("certificate not registered")
)

// Policy sets the timing of uploads and retries.
type Policy struct {
	// BackoffBase is the first backoff between attempts before the deadline.
	BackoffBase time.Duration
	// BackoffMax caps the backoff.
	BackoffMax time.Duration
	// MaxAttempts bounds the posts of one invocation.
	MaxAttempts int
	// MinAttempt is the least time worth starting a post with; an
	// invocation with less time left answers RETRY instead.
	MinAttempt time.Duration
	// Reserve is kept at the end of an invocation to record the outcome.
	Reserve time.Duration
	// SlowInterval is the least time between posts after the deadline; it
	// grows with the lateness (a tenth of it) up to SlowIntervalMax.
	SlowInterval time.Duration
	// SlowIntervalMax caps the time between late posts.
	SlowIntervalMax time.Duration
	// GiveUpAfter is how long after the deadline uncertain uploads are
	// still retried before the session becomes FAILED.
	GiveUpAfter time.Duration
	// Invocation is the time an invocation allows itself when its context
	// has no deadline (the Lambda context always has one).
	Invocation time.Duration
	// StoreRetry bounds the retries of a table write that must hold (the
	// outcome of a post, an attempt record): they go on, with backoff, for
	// this long.
	StoreRetry time.Duration
}

// slowInterval is the least time between late posts at now.
func (p Policy) slowInterval(now, deadline time.Time) time.Duration {
	d := max(now.Sub(deadline)/10, p.SlowInterval)
	if p.SlowIntervalMax > 0 {
		d = min(d, max(p.SlowIntervalMax, p.SlowInterval))
	}
	return d
}

// DefaultPolicy is the policy of the upload function: with customs' two
// minute window and a 10 s post timeout, a few fast retries fit before the
// deadline, then one post at most every 45 s (growing to every 10 minutes
// as the lateness grows) for ceb179.GiveUpAfter.
func DefaultPolicy() Policy {
	return Policy{
		BackoffBase:     500 * time.Millisecond,
		BackoffMax:      4 * time.Second,
		MaxAttempts:     6,
		MinAttempt:      2 * time.Second,
		Reserve:         2 * time.Second,
		SlowInterval:    45 * time.Second,
		SlowIntervalMax: 10 * time.Minute,
		GiveUpAfter:     ceb179.GiveUpAfter,
		Invocation:      25 * time.Second,
		StoreRetry:      8 * time.Second,
	}
}

// Handler answers the upload function's invocations. Build it once per
// process with New; it is safe for concurrent use.
type Handler struct {
	store   Store
	certs   Certificates
	poster  Poster
	policy  Policy
	log     *slog.Logger
	metrics *metrics.Recorder
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	jitter  func(time.Duration) time.Duration
}

// Option configures a Handler.
type Option func(*Handler)

// WithPolicy replaces DefaultPolicy.
func WithPolicy(p Policy) Option { return func(h *Handler) { h.policy = p } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMetrics sets the metrics recorder.
func WithMetrics(m *metrics.Recorder) Option { return func(h *Handler) { h.metrics = m } }

// WithClock replaces time.Now and the sleep between attempts, for tests:
// sleep must return early with ctx's error when ctx ends.
func WithClock(now func() time.Time, sleep func(context.Context, time.Duration) error) Option {
	return func(h *Handler) { h.now, h.sleep = now, sleep }
}

// WithJitter replaces the random jitter, which maps a backoff ceiling to
// the actual wait (default: uniform in [0, ceiling]).
func WithJitter(f func(time.Duration) time.Duration) Option {
	return func(h *Handler) { h.jitter = f }
}

// New returns a handler over the store, the registered certificates and
// the customs client.
func New(store Store, certs Certificates, poster Poster, opts ...Option) *Handler {
	h := &Handler{
		store:  store,
		certs:  certs,
		poster: poster,
		policy: DefaultPolicy(),
		log:    slog.New(slog.DiscardHandler),
		now:    time.Now,
		sleep:  clock.Sleep,
		jitter: fullJitter,
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// backoff returns the wait after the n-th failed attempt (n from 1).
func (h *Handler) backoff(n int) time.Duration {
	ceiling := h.policy.BackoffBase
	for i := 1; i < n && ceiling < h.policy.BackoffMax; i++ {
		ceiling *= 2
	}
	return h.jitter(min(ceiling, h.policy.BackoffMax))
}

// Invoke dispatches an invocation by its op. The error, when not nil, wraps
// ErrBadRequest, ErrUnknownSession or ErrInternal and its text is safe to
// return to the invoker.
func (h *Handler) Invoke(ctx context.Context, in ceb179.Invocation) (any, error) {
	switch in.Op {
	case ceb179.OpSource:
		return h.Source(ctx, in.SessionID)
	case ceb179.OpUpload:
		return h.Upload(ctx, in)
	}
	return nil, fmt.Errorf("%w: unknown op %q", ErrBadRequest, in.Op)
}

// Source returns the exact sign source of sessionID with its digest,
// ebpCode and deadline. For a session already in a final state it returns
// only the state: there is nothing to sign.
func (h *Handler) Source(ctx context.Context, sessionID string) (ceb179.SourceAnswer, error) {
	if sessionID == "" {
		return ceb179.SourceAnswer{}, fmt.Errorf("%w: missing sessionID", ErrBadRequest)
	}
	req, err := h.store.GetRequest(ctx, sessionID)
	if err != nil {
		return ceb179.SourceAnswer{}, h.storeErr(sessionID, "get request", err)
	}
	if req.State.Final() {
		return ceb179.SourceAnswer{SessionID: sessionID, State: req.State, Deadline: req.Deadline.UnixMilli()}, nil
	}
	p, err := h.store.GetPending(ctx, sessionID)
	if err != nil {
		return ceb179.SourceAnswer{}, h.storeErr(sessionID, "get pending upload", err)
	}
	u := Unsigned(p)
	if u.Digest() != p.Digest {
		h.log.Error("stored upload does not match its digest", slog.String("sessionID", sessionID))
		return ceb179.SourceAnswer{}, fmt.Errorf("%w: stored upload of %s does not match its digest", ErrInternal, sessionID)
	}
	return ceb179.SourceAnswer{
		SessionID:  sessionID,
		EbpCode:    p.EbpCode,
		SignSource: string(u.SignSource()),
		Digest:     p.Digest,
		Deadline:   p.Deadline.UnixMilli(),
		State:      req.State,
	}, nil
}

// Unsigned returns the unsigned document of a pending upload: the exact
// bytes whose sign source is signed and that are uploaded.
func Unsigned(p ceb179.Pending) customs.Unsigned {
	return customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
}

// storeErr maps a store error to an invoker-safe error, logging the detail.
func (h *Handler) storeErr(sessionID, what string, err error) error {
	if errors.Is(err, ceb179.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownSession, sessionID)
	}
	h.log.Error(what, slog.String("sessionID", sessionID), slog.String("error", err.Error()))
	return fmt.Errorf("%w: %s", ErrInternal, what)
}

// refusal is why a signed job is not sent.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

// prepare checks the signed job against the stored upload and the
// registered certificate and returns the document to send. A *refusal
// error means the job must not be sent; any other error is internal.
func (h *Handler) prepare(ctx context.Context, job ceb179.Invocation, p ceb179.Pending) ([]byte, error) {
	u := Unsigned(p)
	if job.Digest != p.Digest {
		return nil, &refusal{"refused: the signed digest is not the digest of the assembled upload (a stale or foreign sign job); nothing sent"}
	}
	source := u.SignSource()
	if digestOf(source) != p.Digest {
		return nil, &refusal{"refused: the stored upload does not match its digest; nothing sent"}
	}
	cert, err := h.certs.Certificate(ctx, p.EbpCode, job.CertNo)
	if errors.Is(err, ErrUnknownCertificate) {
		return nil, &refusal{fmt.Sprintf("refused: certificate %s is not registered for ebpCode %s; nothing sent", job.CertNo, p.EbpCode)}
	}
	if err != nil {
		return nil, err
	}
	if err := signature.Verify(cert, source, job.SignValue); err != nil {
		return nil, &refusal{fmt.Sprintf("refused: the signature does not verify against certificate %s of ebpCode %s (%v); nothing sent", job.CertNo, p.EbpCode, err)}
	}
	return u.PayExInfoStr(job.CertNo, job.SignValue), nil
}

// Upload checks a signed job and posts it to customs; see the package
// documentation for the outcomes. Invoking it again for a session in a
// final state answers that state without posting.
func (h *Handler) Upload(ctx context.Context, job ceb179.Invocation) (ceb179.UploadAnswer, error) {
	for _, f := range []struct{ name, v string }{{"sessionID", job.SessionID}, {"digest", job.Digest}, {"certNo", job.CertNo}, {"signValue", job.SignValue}} {
		if strings.TrimSpace(f.v) == "" {
			return ceb179.UploadAnswer{}, fmt.Errorf("%w: missing %s", ErrBadRequest, f.name)
		}
	}
	id := job.SessionID
	log := h.log.With(slog.String("sessionID", id))
	req, err := h.store.GetRequest(ctx, id)
	if err != nil {
		return ceb179.UploadAnswer{}, h.storeErr(id, "get request", err)
	}
	if req.State.Final() {
		h.metrics.Add(MetricRepeated, 1)
		return finalAnswer(req), nil
	}
	p, err := h.store.GetPending(ctx, id)
	if err != nil {
		return ceb179.UploadAnswer{}, h.storeErr(id, "get pending upload", err)
	}
	deadline := p.Deadline
	if deadline.IsZero() {
		deadline = req.Deadline
	}
	giveUpAt := deadline.Add(h.policy.GiveUpAfter)

	started := time.Now()
	doc, err := h.prepare(ctx, job, p)
	if ref := (*refusal)(nil); errors.As(err, &ref) {
		return h.refused(ctx, log, job, ref.reason, giveUpAt)
	}
	if err != nil {
		log.Error("load certificate", slog.String("error", err.Error()))
		return ceb179.UploadAnswer{}, fmt.Errorf("%w: load certificate", ErrInternal)
	}
	h.metrics.Duration(MetricPrepareTime, time.Since(started))

	// Claim the session for this invocation.
	now := h.now()
	budget := h.policy.Invocation
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	owner := newOwner()
	claim, err := h.store.ClaimUpload(ctx, id, owner, now, now.Add(budget+h.policy.Reserve))
	if errors.Is(err, ceb179.ErrClaimed) {
		return claimedAnswer(id, claim), nil
	}
	if err != nil {
		return ceb179.UploadAnswer{}, h.storeErr(id, "claim upload", err)
	}
	run := &run{h: h, log: log, job: job, pending: p, owner: owner, doc: doc,
		received: req.ReceivedAt, deadline: deadline, giveUpAt: giveUpAt, budgetEnd: now.Add(budget - h.policy.Reserve), last: claim.LastAttemptAt,
		uncertain: claim.TakenOver}
	if claim.TakenOver || !claim.LastAttemptAt.IsZero() {
		return run.afterEarlierPost(ctx)
	}
	return run.post(ctx)
}

// refused answers an upload refused before posting (a digest that is not
// the assembled one, stored bytes that do not match it, an unregistered
// certificate, a signature that does not verify): RETRY with the reason
// noted on the session, so that a corrected signer can still upload, and
// FAILED once the give-up time has passed.
func (h *Handler) refused(ctx context.Context, log *slog.Logger, job ceb179.Invocation, reason string, giveUpAt time.Time) (ceb179.UploadAnswer, error) {
	h.metrics.Add(MetricRefused, 1)
	log.Warn("upload refused", slog.String("reason", reason), slog.String("certNo", job.CertNo))
	if h.now().After(giveUpAt) {
		return h.giveUp(ctx, job.SessionID, reason)
	}
	if err := h.store.NoteUpload(ctx, job.SessionID, reason); err != nil {
		log.Error("note refusal", slog.String("error", err.Error()))
	}
	return ceb179.UploadAnswer{SessionID: job.SessionID, State: ceb179.StateRetry, Message: reason}, nil
}

// claimedAnswer answers an upload whose session could not be claimed: the
// final state when it has one, else RETRY saying why.
func claimedAnswer(id string, claim ceb179.UploadClaim) ceb179.UploadAnswer {
	if claim.Request.State.Final() {
		return finalAnswer(claim.Request)
	}
	msg := "another invocation is uploading this session"
	if claim.Request.State != ceb179.StateSigned {
		msg = fmt.Sprintf("session is %s, not ready for upload", claim.Request.State)
	}
	return ceb179.UploadAnswer{SessionID: id, State: ceb179.StateRetry, Message: msg}
}

// afterEarlierPost continues a claim on a session an earlier invocation
// posted: if customs accepted that post and only the record of it failed,
// it finishes without posting again; otherwise it posts.
func (r *run) afterEarlierPost(ctx context.Context) (ceb179.UploadAnswer, error) {
	atts, err := r.h.listAttempts(ctx, r.job.SessionID)
	if err != nil {
		return r.release(ctx, "could not read the earlier attempts: "+err.Error())
	}
	for _, a := range atts {
		if a.Outcome == ceb179.OutcomeAccepted && a.Digest == r.pending.Digest {
			r.last = a.At
			return r.finish(ctx, ceb179.StateAccepted, "accepted by an earlier post: "+a.Message)
		}
	}
	return r.post(ctx)
}

// giveUp makes a session that is still waiting FAILED with reason.
func (h *Handler) giveUp(ctx context.Context, id, reason string) (ceb179.UploadAnswer, error) {
	now := h.now()
	owner := newOwner()
	claim, err := h.store.ClaimUpload(ctx, id, owner, now, now.Add(h.policy.Reserve+time.Minute))
	if errors.Is(err, ceb179.ErrClaimed) {
		if claim.Request.State.Final() {
			return finalAnswer(claim.Request), nil
		}
		return ceb179.UploadAnswer{SessionID: id, State: ceb179.StateRetry, Message: reason}, nil
	}
	if err != nil {
		return ceb179.UploadAnswer{}, h.storeErr(id, "claim upload", err)
	}
	reason = "gave up: " + reason
	if err := h.retryStore(ctx, func(ctx context.Context) error {
		return h.store.FinishUpload(ctx, id, owner, ceb179.StateFailed, reason, time.Time{})
	}); err != nil {
		return ceb179.UploadAnswer{}, h.storeErr(id, "finish upload", err)
	}
	h.metrics.Add(MetricFailed, 1)
	return ceb179.UploadAnswer{SessionID: id, State: ceb179.StateFailed, Message: reason}, nil
}

// finalAnswer answers for a session already in a final state. NO_DATA and
// INVALID sessions have nothing to upload: FAILED, so the bridge drops the job.
func finalAnswer(r ceb179.Request) ceb179.UploadAnswer {
	switch r.State {
	case ceb179.StateAccepted, ceb179.StateRejected, ceb179.StateFailed:
		return ceb179.UploadAnswer{SessionID: r.SessionID, State: r.State, Message: r.Reason}
	}
	return ceb179.UploadAnswer{SessionID: r.SessionID, State: ceb179.StateFailed,
		Message: fmt.Sprintf("session is %s: nothing to upload", r.State)}
}

// retryStore runs a table write that must hold until it succeeds (a lost
// lease is not retried), with
// backoff from 50 ms to 1 s, for at most Policy.StoreRetry (and never past
// ctx's deadline less the reserve). It returns the last error.
func (h *Handler) retryStore(ctx context.Context, f func(context.Context) error) error {
	end := time.Now().Add(h.policy.StoreRetry)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-h.policy.Reserve/2).Before(end) {
		end = dl.Add(-h.policy.Reserve / 2)
	}
	ctx = context.WithoutCancel(ctx)
	wait := 50 * time.Millisecond
	for {
		err := f(ctx)
		if err == nil || errors.Is(err, ceb179.ErrLeaseLost) || !time.Now().Add(wait).Before(end) {
			return err
		}
		_ = clock.Sleep(ctx, wait)
		wait = min(2*wait, time.Second)
	}
}

// listAttempts reads a session's attempt records, retried like retryStore.
func (h *Handler) listAttempts(ctx context.Context, id string) ([]ceb179.Attempt, error) {
	var atts []ceb179.Attempt
	err := h.retryStore(ctx, func(ctx context.Context) error {
		var err error
		atts, err = h.store.ListAttempts(ctx, id)
		return err
	})
	return atts, err
}

// newOwner returns a random lease owner token.
func newOwner() string {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
