package customs

import (
	"fmt"
	"github.com/ceb179/ceb179"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Violation is one broken field rule (ceb179.Violation).
type Violation = ceb179.Violation

// ValidationError holds every broken rule of a payment (ceb179.ValidationError).
type ValidationError = ceb179.ValidationError

// Validate applies the field rules of the specification to a head and its
// orders and returns nil or a *ValidationError with every violation:
//
//   - all text must be valid UTF-8; lengths are counted in characters;
//   - guid: required, at most 36 characters, no lower-case letters;
//   - initalRequest, initalResponse: required, at most 8000 characters;
//   - ebpCode, payCode: required, at most 18; payTransactionId: required, at
//     most 60;
//   - totalAmount: see Amount.Check;
//   - currency: required, at most 4 characters;
//   - verDept: "1", "2" or "3"; payType: empty or "1" to "4";
//   - tradingTime: a real time written yyyyMMddHHmmss;
//   - note: at most 1000 characters;
//   - at least one order; each order: orderNo required, at most 60, not
//     repeated; goodsInfo not empty, each gname required (at most 250) and
//     itemLink required (at most 3000); recpAccount required, at most 60;
//     recpCode at most 18; recpName required, at most 100.
//
// Code fields (guid, ebpCode, payCode, payTransactionId, currency, orderNo,
// recpAccount, recpCode) must also be free of control characters and of
// white space at either end. A required field that holds only white space
// counts as missing.
func Validate(h Head, orders []Order) error {
	var c checker
	c.head(h, true)
	c.orders(orders)
	return c.err()
}

// ValidateRecord is Validate without the guid rule, for a payment record
// kept before any upload: the guid is chosen per upload.
func ValidateRecord(h Head, orders []Order) error {
	var c checker
	c.head(h, false)
	c.orders(orders)
	return c.err()
}

// ValidateHead applies the head rules only; withGUID selects whether the
// guid rule applies.
func ValidateHead(h Head, withGUID bool) error {
	var c checker
	c.head(h, withGUID)
	return c.err()
}

// ValidateOrders applies the rules of payExchangeInfoLists only.
func ValidateOrders(orders []Order) error {
	var c checker
	c.orders(orders)
	return c.err()
}

// Validate applies Validate to the document's head and lists, and checks
// that sessionID is present, at most MaxSessionIDLen characters and free of
// control characters, and that serviceTime is decimal digits.
func (d *Document) Validate() error {
	var c checker
	c.text(KeySessionID, KeySessionID, d.SessionID, MaxSessionIDLen, required|code)
	switch {
	case d.ServiceTime == "":
		c.add(KeyServiceTime, KeyServiceTime, "required")
	case !isServiceTime(d.ServiceTime):
		c.add(KeyServiceTime, KeyServiceTime, "must be decimal digits (milliseconds since the epoch)")
	}
	c.head(d.Head, true)
	c.orders(d.Lists)
	return c.err()
}

// Flags of a text rule.
const (
	required = 1 << iota // must not be empty or only white space
	code                 // no control characters, no white space at either end
)

type checker struct {
	vs []Violation
}

func (c *checker) add(path, field, format string, args ...any) {
	c.vs = append(c.vs, Violation{Path: path, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.vs) == 0 {
		return nil
	}
	return &ValidationError{Violations: c.vs}
}

// text checks one text field and reports whether it passed.
func (c *checker) text(path, field, v string, maxLen int, flags int) bool {
	n := len(c.vs)
	switch {
	case !utf8.ValidString(v):
		c.add(path, field, "not valid UTF-8")
	case strings.TrimSpace(v) == "":
		if flags&required != 0 {
			c.add(path, field, "required")
		}
	default:
		if l := utf8.RuneCountInString(v); l > maxLen {
			c.add(path, field, "longer than %d characters (%d)", maxLen, l)
		}
		if flags&code != 0 {
			if strings.ContainsFunc(v, unicode.IsControl) {
				c.add(path, field, "contains control characters")
			}
			if strings.TrimSpace(v) != v {
				c.add(path, field, "has white space at the start or end")
			}
		}
	}
	return len(c.vs) == n
}

func (c *checker) head(h Head, withGUID bool) {
	p := func(k string) string { return KeyHead + "." + k }
	if withGUID && c.text(p("guid"), "guid", h.GUID, 36, required|code) {
		if strings.ContainsFunc(h.GUID, unicode.IsLower) {
			c.add(p("guid"), "guid", "must not contain lower-case letters")
		}
	}
	c.text(p("initalRequest"), "initalRequest", h.InitalRequest, 8000, required)
	c.text(p("initalResponse"), "initalResponse", h.InitalResponse, 8000, required)
	c.text(p("ebpCode"), "ebpCode", h.EbpCode, 18, required|code)
	c.text(p("payCode"), "payCode", h.PayCode, 18, required|code)
	c.text(p("payTransactionId"), "payTransactionId", h.PayTransactionID, 60, required|code)
	if err := h.TotalAmount.Check(); err != nil {
		c.add(p("totalAmount"), "totalAmount", "%s", strings.TrimPrefix(err.Error(), "totalAmount: "))
	}
	c.text(p("currency"), "currency", h.Currency, 4, required|code)
	switch h.VerDept {
	case "1", "2", "3":
	case "":
		c.add(p("verDept"), "verDept", "required")
	default:
		c.add(p("verDept"), "verDept", `must be "1", "2" or "3"`)
	}
	switch h.PayType {
	case "", "1", "2", "3", "4":
	default:
		c.add(p("payType"), "payType", `must be empty or "1" to "4"`)
	}
	if h.TradingTime == "" {
		c.add(p("tradingTime"), "tradingTime", "required")
	} else if !isTradingTime(h.TradingTime) {
		c.add(p("tradingTime"), "tradingTime", "must be a real time written yyyyMMddHHmmss")
	}
	c.text(p("note"), "note", h.Note, 1000, 0)
}

// isTradingTime reports whether s is a real time written yyyyMMddHHmmss.
func isTradingTime(s string) bool {
	if len(s) != 14 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	t, err := time.Parse("20060102150405", s)
	return err == nil && t.Format("20060102150405") == s
}

func (c *checker) orders(orders []Order) {
	if len(orders) == 0 {
		c.add(KeyLists, KeyLists, "must hold at least one order")
		return
	}
	seen := make(map[string]int, len(orders))
	for i, o := range orders {
		base := fmt.Sprintf("%s[%d].", KeyLists, i)
		if c.text(base+"orderNo", "orderNo", o.OrderNo, 60, required|code) {
			if j, dup := seen[o.OrderNo]; dup {
				c.add(base+"orderNo", "orderNo", "same as %s[%d].orderNo", KeyLists, j)
			} else {
				seen[o.OrderNo] = i
			}
		}
		if len(o.GoodsInfo) == 0 {
			c.add(base+"goodsInfo", "goodsInfo", "must hold at least one item")
		}
		for j, g := range o.GoodsInfo {
			gbase := fmt.Sprintf("%sgoodsInfo[%d].", base, j)
			c.text(gbase+"gname", "gname", g.Gname, 250, required)
			c.text(gbase+"itemLink", "itemLink", g.ItemLink, 3000, required)
		}
		c.text(base+"recpAccount", "recpAccount", o.RecpAccount, 60, required|code)
		c.text(base+"recpCode", "recpCode", o.RecpCode, 18, code)
		c.text(base+"recpName", "recpName", o.RecpName, 100, required)
	}
}

// ValidateOrderNo applies the orderNo rule alone (an order declared to
// customs, before its payment is known), naming the field path.
func ValidateOrderNo(path, orderNo string) error {
	var c checker
	c.text(path, "orderNo", orderNo, 60, required|code)
	return c.err()
}
