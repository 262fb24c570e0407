package records

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ceb179/ceb179/internal/customs"
)

// Path is the route of the HTTP endpoint.
const Path = "/payments"

// Handler is the HTTP endpoint POST /payments, for platforms written in
// other languages. The body is one payment in the shape of ParsePayment
// (Content-Type application/json). Answers, all JSON:
//
//   - 201 {"result":"recorded","payTransactionId":"..."}: stored;
//   - 200 {"result":"duplicate","payTransactionId":"..."}: the same payment
//     was already stored (retrying is safe);
//   - 400 {"error":"malformed","reasons":[...]}: not a payment;
//   - 422 {"error":"invalid","reasons":[...]}: every broken field rule;
//   - 409 {"error":"conflict","reasons":[...]}: the payTransactionId or an
//     order already belongs to another payment;
//   - 503 {"error":"unavailable"}: not stored, retry later.
//
// Authentication is the job of the API in front (IAM authorization on API
// Gateway); the handler trusts its caller.
type Handler struct {
	rec *Recorder
	log *slog.Logger
}

// NewHandler returns the endpoint writing through rec and logging to log
// (slog.Default() when nil).
func NewHandler(rec *Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{rec: rec, log: log}
}

// Answer is the JSON body of every answer of Handler.
type Answer struct {
	// Result is "recorded" or "duplicate" on success.
	Result Result `json:"result,omitempty"`
	// PayTransactionID echoes the payment's payTransactionId, when read.
	PayTransactionID string `json:"payTransactionId,omitempty"`
	// Error is "malformed", "invalid", "conflict", "unavailable",
	// "not found", "method not allowed" or "too large" on failure.
	Error string `json:"error,omitempty"`
	// Reasons lists what is wrong; they name fields, never payment data.
	Reasons []string `json:"reasons,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, a := h.serve(r)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	} else if status >= 400 {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "payments", slog.Int("status", status),
		slog.String("result", string(a.Result)), slog.String("error", a.Error),
		slog.String("payTransactionId", a.PayTransactionID), slog.Int("reasons", len(a.Reasons)))
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (h *Handler) serve(r *http.Request) (int, Answer) {
	if strings.TrimSuffix(r.URL.Path, "/") != Path {
		return http.StatusNotFound, Answer{Error: "not found", Reasons: []string{"POST " + Path}}
	}
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, Answer{Error: "method not allowed", Reasons: []string{"use POST"}}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxLineBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return http.StatusRequestEntityTooLarge, Answer{Error: "too large"}
		}
		return http.StatusBadRequest, Answer{Error: "malformed", Reasons: []string{"body could not be read"}}
	}
	p, err := ParsePayment(body)
	if err != nil {
		return http.StatusBadRequest, Answer{Error: "malformed", Reasons: Reasons(err)}
	}
	a := Answer{PayTransactionID: p.PayTransactionID}
	res, err := h.rec.Record(r.Context(), p)
	var ve *customs.ValidationError
	switch {
	case err == nil:
		a.Result = res
		if res == Recorded {
			return http.StatusCreated, a
		}
		return http.StatusOK, a
	case errors.As(err, &ve):
		a.Error, a.Reasons = "invalid", Reasons(ve)
		return http.StatusUnprocessableEntity, a
	case errors.Is(err, ErrConflict), errors.Is(err, ErrOrderTaken):
		a.Error, a.Reasons = "conflict", []string{conflictReason(err)}
		return http.StatusConflict, a
	case errors.Is(err, ErrExpired):
		a.Error, a.Reasons = "expired", []string{"tradingTime is older than the retention period: the record would be deleted at once"}
		return http.StatusUnprocessableEntity, a
	default:
		h.log.ErrorContext(r.Context(), "record payment", slog.String("payTransactionId", p.PayTransactionID), slog.String("error", err.Error()))
		a.Error = "unavailable"
		return http.StatusServiceUnavailable, a
	}
}

// conflictReason is the caller's view of a conflict: which rule, and the
// order concerned, without internal error text.
func conflictReason(err error) string {
	var ot *OrderTakenError
	if errors.As(err, &ot) {
		return ot.Error()
	}
	return ErrConflict.Error()
}
