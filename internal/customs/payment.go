package customs

import "github.com/ceb179/ceb179"

// Key names of payExInfoStr, exactly as customs expects them.
const (
	KeySessionID   = "sessionID"
	KeyHead        = "payExchangeInfoHead"
	KeyLists       = "payExchangeInfoLists"
	KeyServiceTime = "serviceTime"
	KeyCertNo      = "certNo"
	KeySignValue   = "signValue"
)

// Head is payExchangeInfoHead: the payment, with the raw request and
// response exchanged with the payment company. The JSON tags follow the key
// order of the specification; MarshalHead writes the canonical form.
type Head struct {
	// GUID identifies one upload: at most 36 characters, upper case.
	GUID string `json:"guid"`
	// InitalRequest is the raw request the platform sent to the payment
	// company (the spelling "inital" is the customs key).
	InitalRequest string `json:"initalRequest"`
	// InitalResponse is the raw response the payment company returned.
	InitalResponse string `json:"initalResponse"`
	// EbpCode is the platform's customs registration code.
	EbpCode string `json:"ebpCode"`
	// PayCode is the payment company's customs registration code.
	PayCode string `json:"payCode"`
	// PayTransactionID is the payment serial number.
	PayTransactionID string `json:"payTransactionId"`
	// TotalAmount is the paid amount as exact decimal text.
	TotalAmount Amount `json:"totalAmount"`
	// Currency is the customs currency code, such as "142" for CNY.
	Currency string `json:"currency"`
	// VerDept is "1" (UnionPay), "2" (NetsUnion) or "3" (other).
	VerDept string `json:"verDept"`
	// PayType is "1" (APP), "2" (PC), "3" (QR scan), "4" (other) or empty.
	PayType string `json:"payType"`
	// TradingTime is the payment time as yyyyMMddHHmmss.
	TradingTime string `json:"tradingTime"`
	// Note is an optional remark.
	Note string `json:"note"`
}

// Goods is one entry of an order's goodsInfo (ceb179.Goods).
type Goods = ceb179.Goods

// Order is one entry of payExchangeInfoLists (ceb179.Order).
type Order = ceb179.Order

// Amount is the exact decimal text of a totalAmount (ceb179.Amount).
type Amount = ceb179.Amount

// ParseAmount returns s as an Amount if it satisfies the N19,5 rule
// (ceb179.ParseAmount).
func ParseAmount(s string) (Amount, error) { return ceb179.ParseAmount(s) }
