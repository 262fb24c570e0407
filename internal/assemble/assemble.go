// Package assemble builds, for each customs request on the assemble queue,
// the exact payment data to upload: it finds the payment that paid the
// order, writes payExchangeInfoHead and payExchangeInfoLists with every
// order of that payment and a guid of its own, stores them with the sign
// source's digest as the session's pending upload (a conditional write), and
// puts a small sign job on the sign queue.
//
// Every step is idempotent, so a message delivered twice produces one
// pending upload and one sign job. The order is: store PENDING, claim the
// right to send the job (a lease on the PENDING item), send the job, move
// the request from RECEIVED to ASSEMBLED. A delivery that finds the request
// past RECEIVED does nothing; one that finds the claim held by another comes
// back later; one that finds the request still RECEIVED and the claim free
// or lapsed (an earlier delivery stopped between the steps) finishes the
// steps with the stored bytes.
//
// A payment record may be written a few seconds after customs asks. An
// unknown order is looked up once per delivery and never waited for inside
// an invocation: its message is handed back as a batch item failure with a
// short visibility that grows from one second to RetryMax (RetryDelay), so
// a batch returns as soon as its known orders are done and an unknown order
// never holds up another. The schedule reaches the request's deadline well
// before the queue's last allowed delivery; at the deadline (or that last
// delivery) the request is marked NO_DATA. A stored record that breaks the
// field rules is marked INVALID with its reasons. Nothing is ever invented.
package assemble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/records"
)

// MaxReceives is the assemble queue's maxReceiveCount in template.yaml: a
// message received that many times goes to the dead-letter queue instead of
// being delivered again. On its last receive a message for an unknown order
// is finished (NO_DATA) rather than failed, so no request is left unmarked.
// RetryDelay's schedule reaches a two-minute deadline in 11 receives; the
// rest are room for failed or claimed deliveries.
const MaxReceives = 20

// Defaults of WithRetry: an unknown order's message comes back after 1 s,
// then 2 s, 4 s, 8 s, then every 15 s until the request's deadline.
const (
	DefaultRetryFirst = time.Second
	DefaultRetryMax   = 15 * time.Second
)

// SignJobLease is how long a delivery's claim on sending a sign job holds
// off other deliveries of the same request; a claim older than that is
// taken over (its holder died between claiming and sending).
const SignJobLease = 10 * time.Second

// Metric names recorded by the handler (namespace ceb179, dimension
// Component=assemble; docs/operations.md lists them all). NoData and
// Invalid are final: customs gets nothing for that request.
const (
	MetricAssembled      = "Assembled"
	MetricDuplicate      = "DuplicateDelivery"
	MetricResent         = "SignJobResent"
	MetricClaimed        = "SignJobClaimedElsewhere"
	MetricNotYetFound    = "OrderNotYetFound"
	MetricNoData         = "NoData"
	MetricInvalid        = "Invalid"
	MetricMalformed      = "MalformedMessage"
	MetricFailure        = "Failure"
	MetricAssembleTime   = "AssembleTime"
	MetricTimeToAssemble = "TimeToAssemble"
)

// Requests is what the handler needs of the requests table.
type Requests interface {
	// GetRequest returns the request recorded under sessionID.
	GetRequest(ctx context.Context, sessionID string) (ceb179.Request, error)
	// CreatePending stores p unless the session has a pending upload; it
	// returns the stored one (p or the earlier one) and whether p was written.
	CreatePending(ctx context.Context, p ceb179.Pending) (ceb179.Pending, bool, error)
	// SetState moves the request to state to if it is in one of from.
	SetState(ctx context.Context, sessionID string, to ceb179.State, reason string, t ceb179.Transition) error
	// ClaimSignJob gives owner, for lease, the right to send the session's
	// sign job; false when another owner holds a live claim.
	ClaimSignJob(ctx context.Context, sessionID, owner string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseSignJob gives up owner's claim after a failed send.
	ReleaseSignJob(ctx context.Context, sessionID, owner string) error
}

// Sender puts a message on the sign queue.
type Sender interface {
	Send(ctx context.Context, v any) error
}

// Visibility hides a received message of the assemble queue for d from
// now, so that it comes back after d rather than after the queue's
// visibility timeout.
type Visibility interface {
	ExtendVisibility(ctx context.Context, receiptHandle string, d time.Duration) error
}

// Handler handles batches of the assemble queue.
type Handler struct {
	requests   Requests
	payments   records.Finder
	sign       Sender
	visibility Visibility
	log        *slog.Logger
	metrics    *metrics.Recorder
	now        func() time.Time
	retryFirst time.Duration
	retryMax   time.Duration
}

// Option changes a Handler made by New.
type Option func(*Handler)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMetrics sets the metrics recorder (default none).
func WithMetrics(m *metrics.Recorder) Option { return func(h *Handler) { h.metrics = m } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithVisibility lets the handler shorten the wait before a retried message
// comes back (default: the queue's visibility timeout).
func WithVisibility(v Visibility) Option { return func(h *Handler) { h.visibility = v } }

// WithRetry sets how soon the message of an unknown order comes back: after
// first on its first receive, doubling on each receive up to most
// (defaults DefaultRetryFirst and DefaultRetryMax), never past the
// request's deadline.
func WithRetry(first, most time.Duration) Option {
	return func(h *Handler) {
		h.retryFirst = max(first, time.Millisecond)
		h.retryMax = max(most, h.retryFirst)
	}
}

// RetryDelay returns how long the message of an unknown order stays hidden
// after its receives-th receive (from 1): first, doubled on each receive,
// capped at most.
func RetryDelay(receives int, first, most time.Duration) time.Duration {
	d := first
	for i := 1; i < receives && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// New returns a handler that reads requests and stores pending uploads in
// requests, finds payments in payments and sends sign jobs to sign.
func New(requests Requests, payments records.Finder, sign Sender, opts ...Option) *Handler {
	h := &Handler{requests: requests, payments: payments, sign: sign, log: slog.Default(), now: time.Now,
		retryFirst: DefaultRetryFirst, retryMax: DefaultRetryMax}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Handle processes a batch of assemble messages concurrently and reports
// the ones to deliver again as batch item failures; it never fails the
// batch as a whole. Pass it to lambda.Start.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	failed := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i, m := range ev.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed[i] = !h.handleOne(ctx, m)
		}()
	}
	wg.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// outcome is what became of one message.
type outcome string

const (
	outAssembled outcome = "assembled"
	outResent    outcome = "resent"
	outDuplicate outcome = "duplicate"
	outClaimed   outcome = "claimed_elsewhere"
	outRetry     outcome = "retry"
	outNoData    outcome = "no_data"
	outInvalid   outcome = "invalid"
	outMalformed outcome = "malformed"
	outFailed    outcome = "failed"
)

// metric names the counter each outcome adds to; a resent job also counts
// as assembled.
var metric = map[outcome]string{
	outAssembled: MetricAssembled,
	outResent:    MetricResent,
	outDuplicate: MetricDuplicate,
	outClaimed:   MetricClaimed,
	outRetry:     MetricNotYetFound,
	outNoData:    MetricNoData,
	outInvalid:   MetricInvalid,
	outMalformed: MetricMalformed,
	outFailed:    MetricFailure,
}

// done reports whether a message with this outcome is finished with; the
// others are delivered again.
func (o outcome) done() bool {
	return o != outRetry && o != outFailed && o != outMalformed && o != outClaimed
}

// level is the log level of an outcome.
func (o outcome) level() slog.Level {
	switch o {
	case outNoData, outInvalid, outRetry:
		return slog.LevelWarn
	case outMalformed, outFailed:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// result is what processing one message came to.
type result struct {
	// msg is the message as read (zero when it could not be read).
	msg ceb179.AssembleMessage
	out outcome
	// retryIn is how soon a message that is not done should come back
	// (0: the queue's default).
	retryIn time.Duration
	// reason says why, for the log.
	reason string
	err    error
}

// failed is the result of a step that went wrong; the message comes back
// after retryIn.
func failed(msg ceb179.AssembleMessage, retryIn time.Duration, err error) result {
	return result{msg: msg, out: outFailed, retryIn: retryIn, err: err}
}

// handleOne processes one message and reports whether it is done (true) or
// must be delivered again (false).
func (h *Handler) handleOne(ctx context.Context, m events.SQSMessage) bool {
	start := h.now()
	receives, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	r := h.process(ctx, m.Body, receives)
	h.metrics.Duration(MetricAssembleTime, h.now().Sub(start))
	if r.out == outResent {
		h.metrics.Add(MetricAssembled, 1)
	}
	h.metrics.Add(metric[r.out], 1)
	h.log.Log(ctx, r.out.level(), "assemble", r.attrs(m.MessageId, receives)...)

	done := r.out.done()
	if !done && r.retryIn > 0 && h.visibility != nil && m.ReceiptHandle != "" {
		if err := h.visibility.ExtendVisibility(ctx, m.ReceiptHandle, r.retryIn); err != nil {
			h.log.WarnContext(ctx, "shorten visibility", slog.String("messageId", m.MessageId), slog.String("error", err.Error()))
		}
	}
	return done
}

// attrs are the log attributes of a result: never payment data.
func (r result) attrs(messageID string, receives int) []any {
	attrs := []any{slog.String("outcome", string(r.out)), slog.String("messageId", messageID), slog.Int("receiveCount", receives)}
	if r.msg.SessionID != "" {
		attrs = append(attrs, slog.String("sessionID", r.msg.SessionID), slog.String("orderNo", r.msg.OrderNo))
	}
	if r.reason != "" {
		attrs = append(attrs, slog.String("reason", r.reason))
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("error", r.err.Error()))
	}
	return attrs
}

// process does the work for one message body: read the request, find its
// payment, build the payment data and send the sign job.
func (h *Handler) process(ctx context.Context, body string, receives int) result {
	var msg ceb179.AssembleMessage
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.SessionID == "" || msg.OrderNo == "" {
		return result{out: outMalformed, err: errors.New("assemble message: not a JSON object with sessionID and orderNo")}
	}
	req, err := h.requests.GetRequest(ctx, msg.SessionID)
	if err != nil {
		return failed(msg, time.Second, err)
	}
	if req.State != ceb179.StateReceived {
		// Assembled (the job was sent), or final: nothing left to do.
		return result{msg: msg, out: outDuplicate, reason: "state " + string(req.State)}
	}
	if msg.Replay > 0 && msg.Deadline > req.Deadline.UnixMilli() {
		// An operator's replay has a window of its own.
		req.Deadline = time.UnixMilli(msg.Deadline)
	}
	p, err := h.payments.PaymentByOrder(ctx, req.OrderNo)
	switch {
	case errors.Is(err, ceb179.ErrNotFound):
		return h.noPayment(ctx, msg, req, receives)
	case err != nil:
		return failed(msg, time.Second, err)
	}
	if !p.HasOrder(req.OrderNo) {
		return h.conclude(ctx, msg, ceb179.StateInvalid, outInvalid, "the stored payment does not hold the order")
	}
	built, err := Build(req, p, h.now())
	var ve *customs.ValidationError
	if errors.As(err, &ve) {
		return h.conclude(ctx, msg, ceb179.StateInvalid, outInvalid, strings.Join(records.Reasons(ve), "; "))
	}
	if err != nil {
		return failed(msg, 0, err)
	}
	built.Replay = max(msg.Replay, 0)
	return h.sendJob(ctx, msg, req, built)
}

// noPayment handles a request whose order has no payment record yet: the
// message comes back later while the deadline and the queue allow, and the
// request ends NO_DATA after that.
func (h *Handler) noPayment(ctx context.Context, msg ceb179.AssembleMessage, req ceb179.Request, receives int) result {
	now := h.now()
	if left := req.Deadline.Sub(now); left > 0 && receives < MaxReceives {
		// Never wait here: the message comes back on its own, and the
		// rest of the batch is not held up. SQS counts visibility in
		// whole seconds: rounded up, so that the last retry comes just
		// after the deadline instead of a burst of receives before it.
		d := min(RetryDelay(receives, h.retryFirst, h.retryMax), left)
		d = (d + time.Second - 1) / time.Second * time.Second
		return result{msg: msg, out: outRetry, retryIn: d, reason: "no payment record for the order yet"}
	}
	reason := "no payment record for the order before the deadline"
	if now.Before(req.Deadline) {
		reason = "no payment record for the order at the last delivery the queue allows"
	}
	return h.conclude(ctx, msg, ceb179.StateNoData, outNoData, reason)
}

// conclude ends the request in the final state to, for reason.
func (h *Handler) conclude(ctx context.Context, msg ceb179.AssembleMessage, to ceb179.State, out outcome, reason string) result {
	if err := h.finish(ctx, msg.SessionID, to, reason); err != nil {
		return result{msg: msg, out: outFailed, retryIn: time.Second, reason: reason, err: err}
	}
	return result{msg: msg, out: out, reason: reason}
}

// sendJob stores the built payment data as the pending upload, claims the
// sign job, sends it and marks the request ASSEMBLED.
func (h *Handler) sendJob(ctx context.Context, msg ceb179.AssembleMessage, req ceb179.Request, built ceb179.Pending) result {
	stored, created, err := h.requests.CreatePending(ctx, built)
	if err != nil {
		return failed(msg, time.Second, err)
	}
	// Only the delivery holding the claim sends the job, so two copies of
	// the message handled at the same time send one.
	owner := uuid.NewString()
	claimed, err := h.requests.ClaimSignJob(ctx, req.SessionID, owner, h.now(), SignJobLease)
	if err != nil {
		return failed(msg, time.Second, err)
	}
	if !claimed {
		// Come back when the holder has finished, or its claim has lapsed.
		return result{msg: msg, out: outClaimed, retryIn: SignJobLease, reason: "another delivery is sending the sign job"}
	}
	// The message carries the request's priority (an operator's replay:
	// the normal one).
	if err := h.sign.Send(ctx, stored.SignJob(msg.Priority)); err != nil {
		if rerr := h.requests.ReleaseSignJob(ctx, req.SessionID, owner); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return failed(msg, time.Second, err)
	}
	if err := h.finish(ctx, req.SessionID, ceb179.StateAssembled, ""); err != nil {
		// The job is on its way and the claim still holds: a redelivery
		// within the lease sends nothing; after it, the job is sent once
		// more, which the upload side tolerates (same digest, state checks).
		return failed(msg, SignJobLease, err)
	}
	h.metrics.Duration(MetricTimeToAssemble, h.now().Sub(req.ReceivedAt))
	if !created {
		return result{msg: msg, out: outResent, reason: "pending upload found, sign job sent again"}
	}
	return result{msg: msg, out: outAssembled}
}

// finish moves the request from RECEIVED to state to. A request that has
// already left RECEIVED (another delivery got there first) is fine; a
// failed write is tried again a few times.
func (h *Handler) finish(ctx context.Context, sessionID string, to ceb179.State, reason string) error {
	var err error
	for attempt := range 3 {
		if err = h.requests.SetState(ctx, sessionID, to, reason, ceb179.Assemblable); err == nil {
			return nil
		}
		req, gerr := h.requests.GetRequest(ctx, sessionID)
		if gerr == nil && req.State != ceb179.StateReceived {
			return nil
		}
		if clock.Sleep(ctx, time.Duration(attempt+1)*50*time.Millisecond) != nil {
			return fmt.Errorf("set state %s: %w", to, err)
		}
	}
	return fmt.Errorf("set state %s: %w", to, err)
}

// guidSpace is the name space of the upload guids: a name-based UUID of
// its own, so that ceb179's guids do not collide with other v5 UUIDs.
var guidSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/ceb179/ceb179/guid"))

// GUID returns the guid of the upload of a payment for a customs request:
// a name-based (version 5) UUID of sessionID and payTransactionId, in upper
// case. Processing the same request twice gives the same guid.
func GUID(sessionID, payTransactionID string) string {
	// A line feed cannot occur in either value (code fields are free of
	// control characters), so the name is unambiguous.
	return strings.ToUpper(uuid.NewSHA1(guidSpace, []byte(sessionID+"\n"+payTransactionID)).String())
}

// headOf is the payExchangeInfoHead of p with guid.
func headOf(p records.Payment, guid string) customs.Head {
	return customs.Head{GUID: guid, InitalRequest: p.InitalRequest, InitalResponse: p.InitalResponse,
		EbpCode: p.EbpCode, PayCode: p.PayCode, PayTransactionID: p.PayTransactionID, TotalAmount: p.TotalAmount,
		Currency: p.Currency, VerDept: p.VerDept, PayType: p.PayType, TradingTime: p.TradingTime, Note: p.Note}
}

// Build returns the pending upload for customs request req paid by p,
// assembled at now: the canonical head (with GUID) and lists of every order
// of p, the upload serviceTime (now in milliseconds, as text) and the
// digest of the sign source. It applies the full field rules and returns a
// *customs.ValidationError when p breaks them.
func Build(req ceb179.Request, p records.Payment, now time.Time) (ceb179.Pending, error) {
	guid := GUID(req.SessionID, p.PayTransactionID)
	head := headOf(p, guid)
	if err := p.Validate(); err != nil {
		return ceb179.Pending{}, err
	}
	if err := customs.Validate(head, p.Orders); err != nil {
		return ceb179.Pending{}, err
	}
	hb, err := customs.MarshalHead(head)
	if err != nil {
		return ceb179.Pending{}, fmt.Errorf("head of %s: %w", req.SessionID, err)
	}
	lb, err := customs.MarshalLists(p.Orders)
	if err != nil {
		return ceb179.Pending{}, fmt.Errorf("lists of %s: %w", req.SessionID, err)
	}
	u := customs.Unsigned{SessionID: req.SessionID, Head: hb, Lists: lb, ServiceTime: strconv.FormatInt(now.UnixMilli(), 10)}
	if err := u.Check(); err != nil {
		return ceb179.Pending{}, fmt.Errorf("unsigned %s: %w", req.SessionID, err)
	}
	return ceb179.Pending{
		SessionID:   req.SessionID,
		EbpCode:     p.EbpCode,
		GUID:        guid,
		Head:        hb,
		Lists:       lb,
		ServiceTime: u.ServiceTime,
		Digest:      u.Digest(),
		Deadline:    req.Deadline,
		CreatedAt:   now,
	}, nil
}
