package records

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
)

// MaxOrders is the largest number of orders one payment may pay. A payment
// is stored in one DynamoDB transaction (at most 100 items): its head and
// two items per order.
const MaxOrders = 49

// TradingTimeLayout is the layout of tradingTime: yyyyMMddHHmmss.
const TradingTimeLayout = "20060102150405"

// Order is one entry of payExchangeInfoLists: an order the payment paid,
// its goods and who received the money.
type Order = ceb179.Order

// Goods is one entry of an order's goodsInfo: a name and a link.
type Goods = ceb179.Goods

// Amount is the exact decimal text of totalAmount, such as "88.08" or
// "5.0": never a floating-point number, and a JSON number on the wire.
type Amount = ceb179.Amount

// ValidationError is the error of Validate and Recorder.Record for a
// payment that breaks field rules: it lists every violation.
type ValidationError = ceb179.ValidationError

// Violation is one broken field rule; it names the field, never its value.
type Violation = ceb179.Violation

// Payment is one payment as the platform recorded it: the fields of
// payExchangeInfoHead except guid, which is chosen per upload, and the
// orders it paid, in the order of the original payment request.
type Payment struct {
	// InitalRequest is the raw request sent to the payment company.
	InitalRequest string
	// InitalResponse is the raw response the payment company returned.
	InitalResponse string
	// EbpCode is the platform's customs registration code.
	EbpCode string
	// PayCode is the payment company's customs registration code.
	PayCode string
	// PayTransactionID is the payment serial number; it identifies the payment.
	PayTransactionID string
	// TotalAmount is the paid amount as exact decimal text.
	TotalAmount Amount
	// Currency is the customs currency code, such as "142" for CNY.
	Currency string
	// VerDept is "1" (UnionPay), "2" (NetsUnion) or "3" (other).
	VerDept string
	// PayType is "1" (APP), "2" (PC), "3" (QR scan), "4" (other) or empty.
	PayType string
	// TradingTime is the payment time in China, written yyyyMMddHHmmss.
	TradingTime string
	// Note is an optional remark.
	Note string
	// Orders are the orders the payment paid: payExchangeInfoLists.
	Orders []Order
}

// head returns the payExchangeInfoHead of p with the given guid.
func (p Payment) head(guid string) customs.Head {
	return customs.Head{
		GUID:             guid,
		InitalRequest:    p.InitalRequest,
		InitalResponse:   p.InitalResponse,
		EbpCode:          p.EbpCode,
		PayCode:          p.PayCode,
		PayTransactionID: p.PayTransactionID,
		TotalAmount:      p.TotalAmount,
		Currency:         p.Currency,
		VerDept:          p.VerDept,
		PayType:          p.PayType,
		TradingTime:      p.TradingTime,
		Note:             p.Note,
	}
}

// Validate applies the customs field rules of payExchangeInfoHead (except
// the guid, chosen per upload) and payExchangeInfoLists, and the limit of
// MaxOrders. It returns nil or a *ValidationError listing every violation;
// violations name fields, never values.
func (p Payment) Validate() error {
	err := customs.ValidateRecord(p.head(""), p.Orders)
	if len(p.Orders) <= MaxOrders {
		return err
	}
	v := Violation{
		Path:    customs.KeyLists,
		Field:   customs.KeyLists,
		Message: fmt.Sprintf("more than %d orders in one payment (%d)", MaxOrders, len(p.Orders)),
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Violations = append(ve.Violations, v)
		return ve
	}
	return &ValidationError{Violations: []Violation{v}}
}

// TradedAt returns tradingTime as an instant (tradingTime is China time).
func (p Payment) TradedAt() (time.Time, error) {
	t, err := time.ParseInLocation(TradingTimeLayout, p.TradingTime, ceb179.China)
	if err != nil {
		return time.Time{}, errors.New("tradingTime: not a time written yyyyMMddHHmmss")
	}
	return t, nil
}

// HasOrder reports whether p pays the order orderNo.
func (p Payment) HasOrder(orderNo string) bool {
	for _, o := range p.Orders {
		if o.OrderNo == orderNo {
			return true
		}
	}
	return false
}

// OrderNos returns the order numbers of p, in order.
func (p Payment) OrderNos() []string {
	out := make([]string, len(p.Orders))
	for i, o := range p.Orders {
		out[i] = o.OrderNo
	}
	return out
}

// MarshalJSON returns the canonical JSON line of p: compact, the head keys
// in the order of the specification (without guid), then
// payExchangeInfoLists in customs' canonical form. ParsePayment reads it
// back unchanged.
func (p Payment) MarshalJSON() ([]byte, error) {
	head, err := customs.MarshalHead(p.head(""))
	if err != nil {
		return nil, err
	}
	lists, err := customs.MarshalLists(p.Orders)
	if err != nil {
		return nil, err
	}
	// head is {"guid":"",<rest>}: drop the guid member.
	const guidMember = `{"guid":"",`
	b := make([]byte, 0, len(head)+len(lists)+32)
	b = append(b, '{')
	b = append(b, head[len(guidMember):len(head)-1]...)
	b = append(b, `,"`+customs.KeyLists+`":`...)
	b = append(b, lists...)
	return append(b, '}'), nil
}

// Digest returns the lower-case hex SHA-256 of the canonical JSON of p. Two
// payments with the same digest hold the same data; the store keeps it to
// tell a repeated write of the same payment from a different payment that
// reuses a payTransactionId.
func (p Payment) Digest() (string, error) {
	b, err := p.MarshalJSON()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// FormatTradingTime writes t as tradingTime: China time, yyyyMMddHHmmss.
func FormatTradingTime(t time.Time) string {
	return t.In(ceb179.China).Format(TradingTimeLayout)
}
