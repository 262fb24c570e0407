// Package paymentsapi is the payments API that platforms written in any
// language call (IAM authorization on API Gateway, SigV4-signed requests):
// POST /payments records one payment, or a batch of up to 100 (a JSON
// array or JSON Lines), each payment atomically; POST /orders stores the
// orders the platform declared to customs, so that the settler can tell
// which declared orders still have no payment record.
//
// It logs counts, results and payTransactionIds, never payment data.
package paymentsapi

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ceb179/ceb179/records"
)

// Paths of the API.
const (
	// PaymentsPath records payments.
	PaymentsPath = "/payments"
	// OrdersPath stores declared orders.
	OrdersPath = "/orders"
)

// Handler serves POST /payments and POST /orders. Authentication is the job
// of the API in front (IAM authorization); the handler trusts its caller.
type Handler struct {
	rec    *records.Recorder
	orders records.OrderStore
	log    *slog.Logger
	now    func() time.Time
}

// NewHandler returns the API writing payments through rec and declared
// orders to orders (nil: POST /orders answers 404), logging to log
// (slog.Default() when nil).
func NewHandler(rec *records.Recorder, orders records.OrderStore, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{rec: rec, orders: orders, log: log, now: time.Now}
}

// ServeHTTP implements http.Handler.
//
// POST /payments with one JSON object answers as records.Answer: 201
// recorded, 200 duplicate, 400 malformed, 422 invalid or expired, 409
// conflict, 503 unavailable. With a JSON array or JSON Lines (several
// lines, or Content-Type application/x-ndjson or application/jsonl) of at
// most records.MaxBatch payments it answers records.BatchAnswer, one
// outcome per payment: 200 when each has its final result, 503 when some
// could not be stored (send those again; the others answer duplicate).
//
// POST /orders takes declared orders (records.ParseDeclaredOrder: an
// orderNo or {"orderNo","declaredAt"}), as one JSON value, a JSON array or
// lines, at most records.MaxOrderBatch, and answers records.BatchAnswer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	var (
		status int
		body   any
	)
	switch {
	case path != PaymentsPath && (path != OrdersPath || h.orders == nil):
		status, body = http.StatusNotFound, records.Answer{Error: "not found", Reasons: []string{"POST " + PaymentsPath + " or POST " + OrdersPath}}
	case r.Method != http.MethodPost:
		status, body = http.StatusMethodNotAllowed, records.Answer{Error: "method not allowed", Reasons: []string{"use POST"}}
		w.Header().Set("Allow", http.MethodPost)
	default:
		status, body = h.serve(r, path)
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// serve reads the body and answers it.
func (h *Handler) serve(r *http.Request, path string) (int, any) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, records.MaxBatchBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return http.StatusRequestEntityTooLarge, records.BatchAnswer{Error: "too large", Reasons: []string{"body larger than 6 MB: send smaller batches"}}
		}
		return http.StatusBadRequest, records.BatchAnswer{Error: "malformed", Reasons: []string{"body could not be read"}}
	}
	body := bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("\uFEFF")))
	if path == OrdersPath {
		return h.declare(r.Context(), body)
	}
	if !isLines(r.Header.Get("Content-Type")) && len(body) > 0 && body[0] == '{' && json.Valid(body) {
		return h.one(r.Context(), body)
	}
	return h.batch(r.Context(), body)
}

// isLines reports whether the content type names JSON Lines.
func isLines(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return true
	}
	return false
}

// one records a single payment and answers as records.Answer.
func (h *Handler) one(ctx context.Context, body []byte) (int, any) {
	p, err := records.ParsePayment(body)
	if err != nil {
		h.logOne(ctx, http.StatusBadRequest, "", "malformed")
		return http.StatusBadRequest, records.Answer{Error: "malformed", Reasons: records.Reasons(err)}
	}
	out, _ := h.rec.RecordBatch(ctx, []records.Payment{p})
	o := out[0]
	a := records.Answer{PayTransactionID: p.PayTransactionID}
	status := http.StatusOK
	switch o.Result {
	case records.Recorded:
		a.Result, status = o.Result, http.StatusCreated
	case records.Duplicate:
		a.Result = o.Result
	case records.Invalid:
		a.Error, a.Reasons, status = "invalid", o.Reasons, http.StatusUnprocessableEntity
		if errors.Is(o.Err, records.ErrExpired) {
			a.Error = "expired"
		}
	case records.Conflict:
		a.Error, a.Reasons, status = "conflict", o.Reasons, http.StatusConflict
	default:
		h.log.ErrorContext(ctx, "record payment", slog.String("payTransactionId", p.PayTransactionID), slog.String("error", o.Err.Error()))
		a.Error, status = "unavailable", http.StatusServiceUnavailable
	}
	h.logOne(ctx, status, p.PayTransactionID, cmp.Or(string(a.Result), a.Error))
	return status, a
}

// batch records a JSON array or JSON Lines of payments.
func (h *Handler) batch(ctx context.Context, body []byte) (int, any) {
	items, status, refused := split(body, records.MaxBatch)
	if refused != nil {
		h.log.WarnContext(ctx, "payments batch refused", slog.Int("status", status), slog.String("error", refused.Error))
		return status, *refused
	}
	out := make([]records.Outcome, len(items))
	var (
		ps []records.Payment
		at []int
	)
	for i, it := range items {
		p, err := records.ParsePayment(it)
		if err != nil {
			out[i] = records.Outcome{Index: i, Result: records.Invalid, Reasons: records.Reasons(err), Err: err}
			continue
		}
		ps = append(ps, p)
		at = append(at, i)
	}
	recorded, _ := h.rec.RecordBatch(ctx, ps)
	for j, o := range recorded {
		o.Index = at[j]
		out[at[j]] = o
	}
	return h.answer(ctx, "payments batch", out)
}

// declare stores declared orders.
func (h *Handler) declare(ctx context.Context, body []byte) (int, any) {
	items, status, refused := split(body, records.MaxOrderBatch)
	if refused != nil {
		h.log.WarnContext(ctx, "orders refused", slog.Int("status", status), slog.String("error", refused.Error))
		return status, *refused
	}
	orders := make([]records.DeclaredOrder, len(items))
	bad := map[int]error{}
	for i, it := range items {
		o, err := records.ParseDeclaredOrder(it)
		if err != nil {
			bad[i] = err
			continue
		}
		orders[i] = o
	}
	out := records.DeclareOrders(ctx, h.orders, orders, h.now())
	for i, err := range bad {
		out[i] = records.Outcome{Index: i, Result: records.Invalid, Reasons: records.Reasons(err), Err: err}
	}
	return h.answer(ctx, "orders", out)
}

// answer is the batch answer of out: 200, or 503 when an item could not be
// stored.
func (h *Handler) answer(ctx context.Context, what string, out []records.Outcome) (int, any) {
	a := records.NewBatchAnswer(out)
	status, level := http.StatusOK, slog.LevelInfo
	if n := a.Counts[records.Unavailable]; n > 0 {
		status, level = http.StatusServiceUnavailable, slog.LevelError
		for _, o := range out {
			if o.Result == records.Unavailable && o.Err != nil {
				h.log.ErrorContext(ctx, what+": not stored", slog.Int("index", o.Index), slog.String("error", o.Err.Error()))
				break
			}
		}
	}
	attrs := []any{slog.Int("status", status), slog.Int("items", len(out))}
	for _, r := range []records.Result{records.Recorded, records.Declared, records.Duplicate, records.Invalid, records.Conflict, records.Unavailable} {
		if n := a.Counts[r]; n > 0 {
			attrs = append(attrs, slog.Int(string(r), n))
		}
	}
	h.log.Log(ctx, level, what, attrs...)
	return status, a
}

// split cuts a batch body into its items: the elements of a JSON array, or
// the non-blank lines of JSON Lines. A body that is neither, or holds more
// than limit items, is refused whole.
func split(body []byte, limit int) (items [][]byte, status int, refused *records.BatchAnswer) {
	refuse := func(status int, err string, reason string) ([][]byte, int, *records.BatchAnswer) {
		return nil, status, &records.BatchAnswer{Items: []records.Outcome{}, Error: err, Reasons: []string{reason}}
	}
	tooMany := func() ([][]byte, int, *records.BatchAnswer) {
		return refuse(http.StatusBadRequest, "too many", "more than "+strconv.Itoa(limit)+" items in one batch")
	}
	if len(body) > 0 && body[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil {
			return refuse(http.StatusBadRequest, "malformed", "not a JSON array")
		}
		if len(elems) > limit {
			return tooMany()
		}
		for _, e := range elems {
			items = append(items, e)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), records.MaxBatchBytes)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				if len(items) == limit {
					return tooMany()
				}
				items = append(items, bytes.Clone(line))
			}
		}
	}
	if len(items) == 0 {
		return refuse(http.StatusBadRequest, "malformed", "no items: send a JSON array or JSON Lines")
	}
	return items, 0, nil
}

// logOne logs the answer to a single payment.
func (h *Handler) logOne(ctx context.Context, status int, id, result string) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	} else if status >= 400 {
		level = slog.LevelWarn
	}
	h.log.Log(ctx, level, "payments", slog.Int("status", status), slog.String("result", result), slog.String("payTransactionId", id))
}
