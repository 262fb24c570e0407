package ceb179

import "strings"

// Goods is one entry of an order's goodsInfo.
type Goods struct {
	// Gname is the name of the goods.
	Gname string `json:"gname"`
	// ItemLink is the link to the goods; several links are joined with ";".
	ItemLink string `json:"itemLink"`
}

// Order is one entry of payExchangeInfoLists: an order paid by a payment.
type Order struct {
	// OrderNo is the platform's order number.
	OrderNo string `json:"orderNo"`
	// GoodsInfo lists the goods of the order; it must not be empty.
	GoodsInfo []Goods `json:"goodsInfo"`
	// RecpAccount is the seller's receiving account.
	RecpAccount string `json:"recpAccount"`
	// RecpCode is the receiving company's code; it may be empty.
	RecpCode string `json:"recpCode"`
	// RecpName is the receiving company's name.
	RecpName string `json:"recpName"`
}

// Violation is one broken field rule of a payment. It names the field but
// never holds its value, so it can be logged and returned to callers.
type Violation struct {
	// Path locates the field, such as "payExchangeInfoHead.guid" or
	// "payExchangeInfoLists[1].goodsInfo[0].itemLink".
	Path string `json:"path"`
	// Field is the key of the field, such as "itemLink".
	Field string `json:"field"`
	// Message says what is wrong, such as "longer than 36 characters".
	Message string `json:"message"`
}

// String returns "<path>: <message>".
func (v Violation) String() string {
	return v.Path + ": " + v.Message
}

// ValidationError holds every broken rule of a payment, in field order.
type ValidationError struct {
	// Violations lists the broken rules; it is never empty.
	Violations []Violation
}

// Error lists all violations: "invalid payment data: <path>: <message>;
// <path>: <message>".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return "invalid payment data: " + strings.Join(parts, "; ")
}
