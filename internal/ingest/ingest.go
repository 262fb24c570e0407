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
	"time"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/session"
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
)

// Metric names recorded by the handler.
const (
	MetricReceived     = "Received"
	MetricDuplicate    = "Duplicate"
	MetricBadRequest   = "BadRequest"
	MetricStoreFailure = "StoreFailure"
	MetricQueueFailure = "QueueFailure"
	MetricAckLatency   = "AckLatency"
)

// RequestStore records customs requests.
type RequestStore interface {
	// CreateRequest records r unless its sessionID is known; it returns the
	// stored request and whether r was new.
	CreateRequest(ctx context.Context, r session.Request) (session.Request, bool, error)
	// MarkEnqueued records that the request is on the assemble queue.
	MarkEnqueued(ctx context.Context, sessionID string) error
}

// Sender puts a message on the assemble queue.
type Sender interface {
	Send(ctx context.Context, v any) error
}

// Handler answers customs' platDataOpen calls.
type Handler struct {
	store   RequestStore
	queue   Sender
	log     *slog.Logger
	metrics *metrics.Recorder
	now     func() time.Time
	window  time.Duration
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
// session.Window). Only tests and time-compressed benchmarks change it.
func WithWindow(d time.Duration) Option { return func(h *Handler) { h.window = d } }

// New returns a handler that records requests in store and queues them on queue.
func New(store RequestStore, queue Sender, opts ...Option) *Handler {
	h := &Handler{store: store, queue: queue, log: slog.Default(), now: time.Now, window: session.Window}
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
	level := slog.LevelInfo
	if a.status >= 500 {
		level = slog.LevelError
	} else if a.status >= 400 {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "platDataOpen", attrs...)
}

func (h *Handler) serve(r *http.Request, now time.Time) (answer, customs.OpenReq) {
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
	stored, created, err := h.store.CreateRequest(ctx, session.Request{
		SessionID:   open.SessionID,
		OrderNo:     open.OrderNo,
		ServiceTime: open.ServiceTime,
		ReceivedAt:  now,
		SourceIP:    sourceIP(r),
		Deadline:    now.Add(h.window),
		State:       session.StateReceived,
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
		if stored.Enqueued {
			return answerOK, open
		}
		// An earlier call recorded the request but could not queue it: queue
		// it now, so customs' retry is not lost. Assembly is idempotent.
	} else {
		h.metrics.Add(MetricReceived, 1)
	}

	if err := h.queue.Send(ctx, session.NewAssembleMessage(stored)); err != nil {
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
