package records

import (
	"context"
	"errors"
	"fmt"
	"github.com/ceb179/ceb179"
)

// Errors of a Store, per payment. Test them with errors.Is; an order taken
// by another payment is also a *OrderTakenError.
var (
	// ErrDuplicate: the same payment (same payTransactionId, same data) is
	// already recorded. Writing it again changes nothing.
	ErrDuplicate = errors.New("payment already recorded")
	// ErrConflict: another payment with the same payTransactionId but
	// different data is already recorded. The recorded one is kept.
	ErrConflict = errors.New("payTransactionId already recorded with different data")
	// ErrOrderTaken: an order of the payment already belongs to another
	// payment.
	ErrOrderTaken = errors.New("order already belongs to another payment")
	// ErrExpired: the payment's retention period is already over (its
	// tradingTime plus the retention lies in the past), so the table would
	// delete it at once. It is refused rather than stored and lost.
	ErrExpired = errors.New("payment is older than the retention period")
	// ErrNotFound: no payment is recorded under the key asked for.
	ErrNotFound error = ceb179.ErrNotFound
)

// OrderTakenError reports an order that already belongs to another payment.
type OrderTakenError struct {
	// OrderNo is the order.
	OrderNo string
	// Owner is the payTransactionId of the payment it belongs to, when known.
	Owner string
}

// Error names the order and its owner.
func (e *OrderTakenError) Error() string {
	if e.Owner == "" {
		return fmt.Sprintf("order %s already belongs to another payment", e.OrderNo)
	}
	return fmt.Sprintf("order %s already belongs to payment %s", e.OrderNo, e.Owner)
}

// Is makes errors.Is(err, ErrOrderTaken) true.
func (e *OrderTakenError) Is(target error) bool { return target == ErrOrderTaken }

// Store keeps payments. Implementations write each payment atomically (all
// of it or nothing) and refuse a second payment with the same
// payTransactionId or an order that belongs to another payment.
type Store interface {
	// PutPayments writes valid payments and returns one error per payment,
	// in order: nil when written, or ErrDuplicate, ErrConflict,
	// ErrOrderTaken (wrapped) or a storage failure. Payments must already be
	// valid; the store does not apply the field rules.
	PutPayments(ctx context.Context, ps []Payment) []error
}

// Finder finds the payment that paid an order.
type Finder interface {
	// PaymentByOrder returns the payment holding orderNo, with all its
	// orders, or an error wrapping ErrNotFound.
	PaymentByOrder(ctx context.Context, orderNo string) (Payment, error)
}

// Result says what became of one payment (or one declared order).
type Result string

// Results of Record, RecordBatch, Import, DeclareOrders and the payments
// API.
const (
	// Recorded: the payment was new and is now stored.
	Recorded Result = "recorded"
	// Duplicate: the same payment (or order declaration) was already
	// stored; nothing changed.
	Duplicate Result = "duplicate"
	// Invalid: the payment could not be read or breaks field rules (see
	// the reasons); nothing of it is stored.
	Invalid Result = "invalid"
	// Conflict: its payTransactionId is recorded with other data, or one
	// of its orders belongs to another payment; nothing of it is stored.
	Conflict Result = "conflict"
	// Unavailable: not stored because the store failed; sending it again
	// is safe.
	Unavailable Result = "unavailable"
	// Declared: the declared order was new and is now stored.
	Declared Result = "declared"
)

// Recorder records payments for the platform's Go services. It is safe for
// concurrent use.
type Recorder struct {
	store Store
}

// NewRecorder returns a Recorder writing to store (for example the
// DynamoDB store of package records/dynamostore).
func NewRecorder(store Store) *Recorder {
	return &Recorder{store: store}
}

// Record validates p and stores it. A payment already stored with the same
// data gives Duplicate and no error, so a caller may retry freely. Errors:
// a *ValidationError listing every broken field rule (nothing is stored),
// ErrConflict, ErrOrderTaken (a *OrderTakenError), ErrExpired, or a
// storage failure.
func (r *Recorder) Record(ctx context.Context, p Payment) (Result, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	err := r.store.PutPayments(ctx, []Payment{p})[0]
	switch {
	case err == nil:
		return Recorded, nil
	case errors.Is(err, ErrDuplicate):
		return Duplicate, nil
	}
	return "", fmt.Errorf("record payment %s: %w", p.PayTransactionID, err)
}

// RecordBatch validates every payment of ps and stores the valid ones, each
// atomically (all of it or nothing), and returns one Outcome per payment,
// in order. A payment that breaks a rule never keeps the others from being
// stored. The error is always nil; it is there so that Recorder and Client
// have the same method.
func (r *Recorder) RecordBatch(ctx context.Context, ps []Payment) ([]Outcome, error) {
	out := make([]Outcome, len(ps))
	var (
		valid []Payment
		at    []int
	)
	for i, p := range ps {
		out[i] = Outcome{Index: i, PayTransactionID: p.PayTransactionID}
		if err := p.Validate(); err != nil {
			out[i].set(err)
			continue
		}
		valid = append(valid, p)
		at = append(at, i)
	}
	if len(valid) == 0 {
		return out, nil
	}
	for j, err := range r.store.PutPayments(ctx, valid) {
		out[at[j]].set(err)
	}
	return out, nil
}

// Outcome is what became of one item of a batch: a payment of RecordBatch
// or of POST /payments, or an order of DeclareOrders or POST /orders.
type Outcome struct {
	// Index is the item's position in the batch, from 0.
	Index int `json:"index"`
	// Result says what became of it.
	Result Result `json:"result"`
	// PayTransactionID is the payment's payTransactionId, when read.
	PayTransactionID string `json:"payTransactionId,omitempty"`
	// OrderNo is the declared order's number (orders only).
	OrderNo string `json:"orderNo,omitempty"`
	// Reasons say why it is Invalid, Conflict or Unavailable; they name
	// fields, never payment data.
	Reasons []string `json:"reasons,omitempty"`
	// Err is the error behind Invalid, Conflict and Unavailable, for Go
	// callers (*ValidationError, ErrMalformed, ErrExpired, ErrConflict,
	// ErrOrderTaken, or the failure); nil otherwise. Not sent on the wire.
	Err error `json:"-"`
}

// set fills in the result and reasons of o from the error of a store (or
// of Validate); nil means recorded.
func (o *Outcome) set(err error) {
	var ve *ValidationError
	o.Err = err
	switch {
	case err == nil:
		o.Result = Recorded
	case errors.Is(err, ErrDuplicate):
		o.Result, o.Err = Duplicate, nil
	case errors.As(err, &ve), errors.Is(err, ErrMalformed):
		o.Result, o.Reasons = Invalid, Reasons(err)
	case errors.Is(err, ErrExpired):
		o.Result, o.Reasons = Invalid, []string{ExpiredReason}
	case errors.Is(err, ErrConflict), errors.Is(err, ErrOrderTaken):
		o.Result, o.Reasons = Conflict, []string{ConflictReason(err)}
	default:
		o.Result, o.Reasons = Unavailable, []string{UnavailableReason}
	}
}

// Reasons given for an expired or an unstored payment, and for a conflict
// without an order.
const (
	// ExpiredReason explains ErrExpired to a caller.
	ExpiredReason = "tradingTime is older than the retention period: the record would be deleted at once"
	// UnavailableReason explains a store failure to a caller without its
	// internal text.
	UnavailableReason = "not stored: the store is unavailable; send it again"
)

// ConflictReason is the caller's view of a conflict: which rule, and the
// order concerned, without internal error text.
func ConflictReason(err error) string {
	var ot *OrderTakenError
	if errors.As(err, &ot) {
		return ot.Error()
	}
	return ErrConflict.Error()
}

// MaxBatch is the largest number of payments in one batch of the payments
// API (POST /payments with a JSON array or JSON Lines); Client.RecordBatch
// sends larger slices in several batches.
const MaxBatch = 100

// MaxOrderBatch is the largest number of declared orders in one POST /orders.
const MaxOrderBatch = 1000

// MaxBatchBytes is the largest body of the payments API: Lambda takes at
// most 6 MB in a synchronous invocation.
const MaxBatchBytes = 6 << 20

// Answer is the body of the payments API's answer to one payment (a JSON
// object): 201 recorded, 200 duplicate, 400 malformed, 422 invalid or
// expired, 409 conflict, 503 unavailable.
type Answer struct {
	// Result is "recorded" or "duplicate" on success.
	Result Result `json:"result,omitempty"`
	// PayTransactionID echoes the payment's payTransactionId, when read.
	PayTransactionID string `json:"payTransactionId,omitempty"`
	// Error is "malformed", "invalid", "expired", "conflict",
	// "unavailable", "not found", "method not allowed" or "too large" on
	// failure.
	Error string `json:"error,omitempty"`
	// Reasons lists what is wrong; they name fields, never payment data.
	Reasons []string `json:"reasons,omitempty"`
}

// BatchAnswer is the body of the payments API's answer to a batch (POST
// /payments with a JSON array or JSON Lines, and every POST /orders): 200
// when every item has its final result, 503 when some could not be stored
// (their Result is Unavailable: send them again), 400 or 413 when the
// batch as a whole was refused (Error and Reasons say why, Items is empty).
type BatchAnswer struct {
	// Counts counts the items by result.
	Counts map[Result]int `json:"counts,omitempty"`
	// Items holds one Outcome per item, in the order sent.
	Items []Outcome `json:"items"`
	// Error is "malformed", "too many", "too large", "not found" or
	// "method not allowed" when the batch was refused whole.
	Error string `json:"error,omitempty"`
	// Reasons say why the batch was refused.
	Reasons []string `json:"reasons,omitempty"`
}

// NewBatchAnswer returns the answer holding items, counted.
func NewBatchAnswer(items []Outcome) BatchAnswer {
	a := BatchAnswer{Counts: map[Result]int{}, Items: items}
	for _, o := range items {
		a.Counts[o.Result]++
	}
	return a
}
