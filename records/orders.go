package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
)

// DeclaredOrder is an order the platform declared to customs (its 订单
// declaration). Customs may ask for the payment data of any declared
// order, so each one needs a payment record; ceb179 compares the two
// (`ceb179 coverage`, the settler's Missing metric).
type DeclaredOrder struct {
	// OrderNo is the order number, as in payExchangeInfoLists.
	OrderNo string `json:"orderNo"`
	// DeclaredAt is when the order was declared; zero means when ceb179
	// received the declaration.
	DeclaredAt time.Time `json:"declaredAt,omitzero"`
}

// Validate applies the orderNo rule of payExchangeInfoLists (required, at
// most 60 characters, no control characters, no white space at either end)
// and returns nil or a *ValidationError.
func (o DeclaredOrder) Validate() error {
	return customs.ValidateOrderNo("orderNo", o.OrderNo)
}

// OrderStore keeps declared orders.
type OrderStore interface {
	// DeclareOrders stores valid declared orders and returns one error per
	// order, in order: nil when stored, ErrDuplicate when the order was
	// already declared (the first declaration is kept), or a storage
	// failure.
	DeclareOrders(ctx context.Context, orders []DeclaredOrder) []error
}

// DeclareOrders validates orders, stores the valid ones in store and
// returns one Outcome per order: Declared, Duplicate, Invalid (with
// reasons) or Unavailable. A declared order with no DeclaredAt is declared
// at now.
func DeclareOrders(ctx context.Context, store OrderStore, orders []DeclaredOrder, now time.Time) []Outcome {
	out := make([]Outcome, len(orders))
	var (
		valid []DeclaredOrder
		at    []int
	)
	for i, o := range orders {
		out[i] = Outcome{Index: i, OrderNo: o.OrderNo}
		if err := o.Validate(); err != nil {
			out[i].Result, out[i].Reasons, out[i].Err = Invalid, Reasons(err), err
			continue
		}
		if o.DeclaredAt.IsZero() {
			o.DeclaredAt = now
		}
		valid = append(valid, o)
		at = append(at, i)
	}
	if len(valid) == 0 {
		return out
	}
	for j, err := range store.DeclareOrders(ctx, valid) {
		o := &out[at[j]]
		switch {
		case err == nil:
			o.Result = Declared
		case errors.Is(err, ErrDuplicate):
			o.Result = Duplicate
		default:
			o.Result, o.Reasons, o.Err = Unavailable, []string{UnavailableReason}, err
		}
	}
	return out
}

// ParseDeclaredOrder reads one declared order: a line holding only the
// orderNo, a JSON string, or a JSON object {"orderNo": ..., "declaredAt":
// ...} whose declaredAt (optional) is RFC 3339 text, China time written
// yyyyMMddHHmmss, or a JSON number of milliseconds since the epoch. Errors
// wrap ErrMalformed; the orderNo rule is not applied here (Validate).
func ParseDeclaredOrder(b []byte) (DeclaredOrder, error) {
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\uFEFF")))
	switch {
	case len(b) == 0:
		return DeclaredOrder{}, fmt.Errorf("%w: empty", ErrMalformed)
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return DeclaredOrder{}, fmt.Errorf("%w: not a JSON string", ErrMalformed)
		}
		return DeclaredOrder{OrderNo: s}, nil
	case b[0] != '{':
		return DeclaredOrder{OrderNo: string(b)}, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return DeclaredOrder{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var o DeclaredOrder
	for k, v := range raw {
		switch k {
		case "orderNo":
			if err := json.Unmarshal(v, &o.OrderNo); err != nil {
				return DeclaredOrder{}, fmt.Errorf("%w: orderNo must be a JSON string", ErrMalformed)
			}
		case "declaredAt":
			t, err := parseDeclaredAt(v)
			if err != nil {
				return DeclaredOrder{}, err
			}
			o.DeclaredAt = t
		default:
			return DeclaredOrder{}, fmt.Errorf("%w: unknown key %q (keys: orderNo, declaredAt)", ErrMalformed, shortKey(k))
		}
	}
	return o, nil
}

// parseDeclaredAt reads a declaredAt value.
func parseDeclaredAt(v json.RawMessage) (time.Time, error) {
	bad := fmt.Errorf("%w: declaredAt must be RFC 3339 text, yyyyMMddHHmmss (China time) or milliseconds since the epoch", ErrMalformed)
	if len(v) > 0 && v[0] != '"' {
		ms, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || ms <= 0 {
			return time.Time{}, bad
		}
		return time.UnixMilli(ms), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return time.Time{}, bad
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(TradingTimeLayout, s, ceb179.China); err == nil && len(s) == len(TradingTimeLayout) {
		return t, nil
	}
	return time.Time{}, bad
}
