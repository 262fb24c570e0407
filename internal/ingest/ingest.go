// Package ingest holds the platDataOpen endpoint that customs calls: it
// records each request durably, queues it for assembly and answers customs at
// once. The same http.Handler serves API Gateway (through package apigw) and
// the local stack.
package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/metrics"
)

// Path is the route customs calls.
const Path = "/platDataOpen"

// MaxBodyBytes is the largest request body accepted. A real openReq is about
// a hundred bytes.
const MaxBodyBytes = 64 << 10

// Answer codes beyond customs' own success and failure codes. Customs reads
// any code from 20001 to 21000 as "other error".
const (
	// CodeStoreUnavailable: the request could not be recorded.
	CodeStoreUnavailable = customs.CodeUnavailable
	// CodeQueueUnavailable: the request was recorded but could not be queued.
	CodeQueueUnavailable = "20003"
	// CodeSourceRefused: the caller's address is not on the allowlist of
	// customs source networks.
	CodeSourceRefused = "20009"
)

// Metric names recorded by the handler.
const (
	MetricReceived     = "Received"
	MetricDuplicate    = "Duplicate"
	MetricBadRequest   = "BadRequest"
	MetricStoreFailure = "StoreFailure"
	MetricQueueFailure = "QueueFailure"
	MetricAckLatency   = "AckLatency"
	// MetricRefused counts callers refused because their address is not
	// on the allowlist.
	MetricRefused = "Refused"
	// MetricCapped counts new requests over their order's daily cap:
	// answered 10000, recorded and signed with ceb179.PriorityLow.
	MetricCapped = "Capped"
	// MetricCapFailure counts requests whose cap could not be checked;
	// they are signed with ceb179.PriorityNormal.
	MetricCapFailure = "CapFailure"
)

// RequestStore records customs requests.
type RequestStore interface {
	// CreateRequest records r unless its sessionID is known; it returns the
	// stored request and whether r was new.
	CreateRequest(ctx context.Context, r ceb179.Request) (ceb179.Request, bool, error)
	// MarkEnqueued records that the request is on the assemble queue.
	MarkEnqueued(ctx context.Context, sessionID string) error
}

// Sender puts a message on the assemble queue.
type Sender interface {
	Send(ctx context.Context, v any) error
}

// CapStore counts the requests of each order per China calendar day.
type CapStore interface {
	// CountOrderRequest counts the request sessionID for orderNo on the
	// China day of at, once however often it is asked, and reports whether
	// it is one of the first limit requests of that order and day.
	CountOrderRequest(ctx context.Context, orderNo, sessionID string, at time.Time, limit int) (bool, error)
}

// Handler answers customs' platDataOpen calls.
type Handler struct {
	store     RequestStore
	queue     Sender
	log       *slog.Logger
	metrics   *metrics.Recorder
	now       func() time.Time
	window    time.Duration
	caps      CapStore
	dailyCap  int
	allowlist []netip.Prefix
}

// Option changes a Handler made by New.
type Option func(*Handler)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMetrics sets the metrics recorder (default: none).
func WithMetrics(m *metrics.Recorder) Option { return func(h *Handler) { h.metrics = m } }

// WithClock sets the clock (default: time.Now).
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithWindow sets how long after a request its upload is due (default
// ceb179.Window). Only tests and time-compressed benchmarks change it.
func WithWindow(d time.Duration) Option { return func(h *Handler) { h.window = d } }

// WithDailyCap signs the first n requests per orderNo and China calendar
// day with ceb179.PriorityNormal, counting them in caps; the others are
// recorded, answered 10000, queued and signed like them, with
// ceb179.PriorityLow. Requests from an address on the allowlist are never
// capped. n <= 0 means no cap.
func WithDailyCap(caps CapStore, n int) Option {
	return func(h *Handler) { h.caps, h.dailyCap = caps, n }
}

// WithAllowlist answers only callers whose address (the connection's peer,
// as the front door saw it; never a header the caller sent) is in one of
// nets. An empty list lets everyone call.
func WithAllowlist(nets []netip.Prefix) Option {
	return func(h *Handler) { h.allowlist = nets }
}

// New returns a handler that records requests in store and queues them on queue.
func New(store RequestStore, queue Sender, opts ...Option) *Handler {
	h := &Handler{store: store, queue: queue, log: slog.Default(), now: time.Now, window: ceb179.Window}
	for _, o := range opts {
		o(h)
	}
	return h
}

// answer is the outcome of one call, mapped to HTTP in ServeHTTP.
type answer struct {
	status  int
	code    string
	message string
}

var (
	answerOK       = answer{http.StatusOK, customs.CodeSuccess, ""}
	answerNotFound = answer{http.StatusNotFound, customs.CodeBadRequest, "not found: customs calls POST " + Path}
	answerMethod   = answer{http.StatusMethodNotAllowed, customs.CodeBadRequest, "method not allowed: use POST"}
	answerTooLarge = answer{http.StatusRequestEntityTooLarge, customs.CodeBadRequest, "request body too large"}
	answerStore    = answer{http.StatusServiceUnavailable, CodeStoreUnavailable, "request not recorded, please retry"}
	answerQueue    = answer{http.StatusServiceUnavailable, CodeQueueUnavailable, "request not queued, please retry"}
	answerRefused  = answer{http.StatusForbidden, CodeSourceRefused, "caller address not allowed"}
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	a, req := h.serve(r, start)
	h.write(w, a)

	latency := h.now().Sub(start)
	h.metrics.Duration(MetricAckLatency, latency)
	attrs := []any{
		slog.String("code", a.code),
		slog.Int("status", a.status),
		slog.Float64("latency_ms", float64(latency.Microseconds())/1000),
	}
	if req.SessionID != "" {
		attrs = append(attrs, slog.String("sessionID", req.SessionID), slog.String("orderNo", req.OrderNo))
	}
	if a.code == CodeSourceRefused {
		attrs = append(attrs, slog.String("source", sourceIP(r)))
	}
	level := slog.LevelInfo
	if a.status >= 500 {
		level = slog.LevelError
	} else if a.status >= 400 {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "platDataOpen", attrs...)
}

func (h *Handler) serve(r *http.Request, now time.Time) (answer, customs.OpenReq) {
	if !h.allowed(r) {
		h.metrics.Add(MetricRefused, 1)
		return answerRefused, customs.OpenReq{}
	}
	if r.URL.Path != Path {
		return answerNotFound, customs.OpenReq{}
	}
	if r.Method != http.MethodPost {
		return answerMethod, customs.OpenReq{}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		h.metrics.Add(MetricBadRequest, 1)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return answerTooLarge, customs.OpenReq{}
		}
		return answer{http.StatusBadRequest, customs.CodeBadRequest, "request body could not be read"}, customs.OpenReq{}
	}
	open, err := customs.ParseOpenReq(r.Header.Get("Content-Type"), body)
	if err != nil {
		h.metrics.Add(MetricBadRequest, 1)
		return answer{http.StatusBadRequest, customs.CodeBadRequest, parseMessage(err)}, customs.OpenReq{}
	}

	ctx := r.Context()
	source := sourceIP(r)
	stored, created, err := h.store.CreateRequest(ctx, ceb179.Request{
		SessionID:   open.SessionID,
		OrderNo:     open.OrderNo,
		ServiceTime: open.ServiceTime,
		ReceivedAt:  now,
		SourceIP:    source,
		Deadline:    now.Add(h.window),
		State:       ceb179.StateReceived,
		Priority:    h.priority(ctx, open, source, now),
	})
	if err != nil {
		h.metrics.Add(MetricStoreFailure, 1)
		h.log.ErrorContext(ctx, "record request", slog.String("sessionID", open.SessionID), slog.String("error", err.Error()))
		return answerStore, open
	}
	if !created {
		h.metrics.Add(MetricDuplicate, 1)
		if stored.OrderNo != open.OrderNo {
			h.log.WarnContext(ctx, "repeated sessionID with another orderNo",
				slog.String("sessionID", open.SessionID), slog.String("storedOrderNo", stored.OrderNo))
		}
		if stored.Enqueued || stored.State.Final() {
			return answerOK, open
		}
		// An earlier call recorded the request but could not queue it: queue
		// it now, so customs' retry is not lost. Assembly is idempotent.
	} else {
		h.metrics.Add(MetricReceived, 1)
		if stored.Priority != ceb179.PriorityNormal {
			h.metrics.Add(MetricCapped, 1)
			h.log.WarnContext(ctx, "order over its daily cap: answered, signed after the requests within it",
				slog.String("sessionID", stored.SessionID), slog.String("orderNo", stored.OrderNo), slog.Int("cap", h.dailyCap))
		}
	}

	if err := h.queue.Send(ctx, ceb179.NewAssembleMessage(stored)); err != nil {
		h.metrics.Add(MetricQueueFailure, 1)
		h.log.ErrorContext(ctx, "queue request", slog.String("sessionID", open.SessionID), slog.String("error", err.Error()))
		return answerQueue, open
	}
	if err := h.store.MarkEnqueued(ctx, stored.SessionID); err != nil {
		// The message is queued, so the work is durable; a customs retry
		// would only queue it once more, which assembly tolerates.
		h.log.WarnContext(ctx, "mark request enqueued", slog.String("sessionID", open.SessionID), slog.String("error", err.Error()))
	}
	return answerOK, open
}

// allowed reports whether the caller's address may call: always when there
// is no allowlist; otherwise only an address inside it. An address that
// cannot be read is refused.
func (h *Handler) allowed(r *http.Request) bool {
	return len(h.allowlist) == 0 || h.allowlisted(sourceIP(r))
}

// allowlisted reports whether source is inside the allowlist.
func (h *Handler) allowlisted(source string) bool {
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range h.allowlist {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// priority counts the request against its order's daily cap and returns
// how its sign job is scheduled: ceb179.PriorityLow over the cap,
// ceb179.PriorityNormal otherwise. A caller on the allowlist is never
// capped. The count is idempotent per sessionID, so customs repeating a
// request, or a retried write, gets the same answer. When the count fails
// the request is signed as if under the cap: an extra normal signature
// costs little, a customs request held back might be late.
func (h *Handler) priority(ctx context.Context, open customs.OpenReq, source string, now time.Time) ceb179.Priority {
	if h.caps == nil || h.dailyCap <= 0 || h.allowlisted(source) {
		return ceb179.PriorityNormal
	}
	within, err := h.caps.CountOrderRequest(ctx, open.OrderNo, open.SessionID, now, h.dailyCap)
	if err != nil {
		h.metrics.Add(MetricCapFailure, 1)
		h.log.ErrorContext(ctx, "count order requests; signing without the cap", slog.String("sessionID", open.SessionID), slog.String("error", err.Error()))
		return ceb179.PriorityNormal
	}
	if within {
		return ceb179.PriorityNormal
	}
	return ceb179.PriorityLow
}

func (h *Handler) write(w http.ResponseWriter, a answer) {
	b := customs.NewAck(a.code, a.message, h.now()).JSON()
	hdr := w.Header()
	hdr.Set("Content-Type", customs.AckContentType)
	if a.status == http.StatusMethodNotAllowed {
		hdr.Set("Allow", http.MethodPost)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
}

// parseMessage is the text customs sees for an openReq that cannot be parsed:
// the parser's own short message, never an internal error.
func parseMessage(err error) string {
	var pe *customs.ParseError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return "openReq could not be parsed"
}

// sourceIP returns the caller's address without its port.
func sourceIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
