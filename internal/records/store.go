package records

import (
	"context"
	"errors"
	"fmt"
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
	// orders, or an error wrapping ceb179.ErrNotFound.
	PaymentByOrder(ctx context.Context, orderNo string) (Payment, error)
}

// Result says what Record did with a payment.
type Result string

// Results of Record and Import.
const (
	// Recorded: the payment was new and is now stored.
	Recorded Result = "recorded"
	// Duplicate: the same payment was already stored; nothing changed.
	Duplicate Result = "duplicate"
)

// Recorder records payments for the platform's Go services. It is safe for
// concurrent use.
type Recorder struct {
	store Store
}

// NewRecorder returns a Recorder writing to store (for example a
// *dynamo.Store built from the environment).
func NewRecorder(store Store) *Recorder {
	return &Recorder{store: store}
}

// Record validates p and stores it. A payment already stored with the same
// data gives Duplicate and no error, so a caller may retry freely. Errors:
// a *customs.ValidationError listing every broken field rule (nothing is
// stored), ErrConflict, ErrOrderTaken (a *OrderTakenError), or a storage
// failure.
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
