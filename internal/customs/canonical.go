package customs

import (
	"errors"
	"unicode/utf8"
)

// MarshalHead returns the canonical JSON text of h: compact, keys in the
// order of the specification (guid, initalRequest, initalResponse, ebpCode,
// payCode, payTransactionId, totalAmount, currency, verDept, payType,
// tradingTime, note), every key always present, totalAmount written as its
// exact text, and strings escaped by AppendJSONString. It fails if a field
// is not valid UTF-8 or totalAmount is not a JSON number. It does not apply
// the field rules; see Validate.
func MarshalHead(h Head) ([]byte, error) {
	var w canonWriter
	w.begin('{')
	w.str("guid", h.GUID)
	w.str("initalRequest", h.InitalRequest)
	w.str("initalResponse", h.InitalResponse)
	w.str("ebpCode", h.EbpCode)
	w.str("payCode", h.PayCode)
	w.str("payTransactionId", h.PayTransactionID)
	w.amount("totalAmount", h.TotalAmount)
	w.str("currency", h.Currency)
	w.str("verDept", h.VerDept)
	w.str("payType", h.PayType)
	w.str("tradingTime", h.TradingTime)
	w.str("note", h.Note)
	w.end('}')
	if w.err != nil {
		return nil, w.err
	}
	return w.buf, nil
}

// MarshalLists returns the canonical JSON text of orders, the value of
// payExchangeInfoLists: a compact array of objects with the keys orderNo,
// goodsInfo (an array of {gname, itemLink}), recpAccount, recpCode and
// recpName, in that order. A nil or empty slice gives "[]" (which Validate
// rejects), as does a nil goodsInfo. It fails if a field is not valid UTF-8.
func MarshalLists(orders []Order) ([]byte, error) {
	var w canonWriter
	w.begin('[')
	for _, o := range orders {
		w.elem()
		w.begin('{')
		w.str("orderNo", o.OrderNo)
		w.key("goodsInfo")
		w.begin('[')
		for _, g := range o.GoodsInfo {
			w.elem()
			w.begin('{')
			w.str("gname", g.Gname)
			w.str("itemLink", g.ItemLink)
			w.end('}')
		}
		w.end(']')
		w.str("recpAccount", o.RecpAccount)
		w.str("recpCode", o.RecpCode)
		w.str("recpName", o.RecpName)
		w.end('}')
	}
	w.end(']')
	if w.err != nil {
		return nil, w.err
	}
	return w.buf, nil
}

// canonWriter appends compact JSON to buf and remembers the first error.
// first is true right after an opening bracket, when no comma is due.
type canonWriter struct {
	buf   []byte
	first bool
	err   error
}

func (w *canonWriter) begin(c byte) {
	w.buf = append(w.buf, c)
	w.first = true
}

func (w *canonWriter) end(c byte) {
	w.buf = append(w.buf, c)
	w.first = false
}

// elem starts an array element or an object member.
func (w *canonWriter) elem() {
	if !w.first {
		w.buf = append(w.buf, ',')
	}
	w.first = false
}

func (w *canonWriter) key(k string) {
	w.elem()
	w.buf = AppendJSONString(w.buf, k)
	w.buf = append(w.buf, ':')
}

func (w *canonWriter) str(k, v string) {
	w.key(k)
	if !utf8.ValidString(v) && w.err == nil {
		w.err = errors.New(k + ": not valid UTF-8")
	}
	w.buf = AppendJSONString(w.buf, v)
}

func (w *canonWriter) amount(k string, a Amount) {
	w.key(k)
	if _, err := a.MarshalJSON(); err != nil && w.err == nil {
		w.err = errors.New(k + ": not a JSON number")
	}
	w.buf = append(w.buf, a...)
}

// AppendJSONString appends s to dst as a JSON string in the canonical form:
// only the double quote, the backslash and the control characters below
// U+0020 are escaped (\b, \f, \n, \r and \t in their short forms, the others
// as \u00XX with lower-case hex). Everything else, including <, >, &, /,
// U+2028, U+2029 and all non-ASCII text, is written as is. The caller must
// make sure s is valid UTF-8; invalid bytes are copied unchanged.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
