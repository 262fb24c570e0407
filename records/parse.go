package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ceb179/ceb179/internal/customs"
)

// MaxLineBytes is the longest JSON text of one payment that ParsePayment
// and Import accept. A payment's two raw fields are at most 8000 characters
// each; 49 orders with long item links stay well below this.
const MaxLineBytes = 4 << 20

// ErrMalformed is wrapped by the errors of ParsePayment when the input is
// not a payment in the expected JSON shape.
var ErrMalformed = errors.New("malformed payment")

// ParsePayment reads one payment in the shape of a line of `ceb179 import`
// and of the body of POST /payments: a JSON object holding the
// payExchangeInfoHead fields except guid (initalRequest, initalResponse,
// ebpCode, payCode, payTransactionId, totalAmount as a JSON number,
// currency, verDept, payType, tradingTime, note) and payExchangeInfoLists
// exactly as customs receives it.
//
// Keys are matched exactly and may appear once; unknown keys (guid
// included) are errors, and so is a quoted totalAmount, whose text is kept
// as written. Missing fields read as empty, for Validate to report. The
// field rules are not applied here.
func ParsePayment(b []byte) (Payment, error) {
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\uFEFF")))
	if len(b) > MaxLineBytes {
		return Payment{}, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxLineBytes)
	}
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return Payment{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	head, lists, err := splitLine(b)
	if err != nil {
		return Payment{}, err
	}
	// Read the parts with the wire format's strict reader, as the head and
	// lists of a document: same keys, same types, same messages.
	doc := make([]byte, 0, len(b)+96)
	doc = append(doc, `{"sessionID":"-","serviceTime":"0","payExchangeInfoHead":`...)
	doc = append(doc, head...)
	doc = append(doc, `,"payExchangeInfoLists":`...)
	doc = append(doc, lists...)
	doc = append(doc, '}')
	d, err := customs.ReadDocument(doc)
	if err != nil {
		var pe *customs.ParseError
		if errors.As(err, &pe) {
			return Payment{}, fmt.Errorf("%w: %s", ErrMalformed, pe.Detail)
		}
		return Payment{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h := d.Head
	return Payment{
		InitalRequest:    h.InitalRequest,
		InitalResponse:   h.InitalResponse,
		EbpCode:          h.EbpCode,
		PayCode:          h.PayCode,
		PayTransactionID: h.PayTransactionID,
		TotalAmount:      h.TotalAmount,
		Currency:         h.Currency,
		VerDept:          h.VerDept,
		PayType:          h.PayType,
		TradingTime:      h.TradingTime,
		Note:             h.Note,
		Orders:           d.Lists,
	}, nil
}

// headKeys are the keys of a payment line besides payExchangeInfoLists.
var headKeys = map[string]bool{
	"initalRequest": true, "initalResponse": true, "ebpCode": true, "payCode": true,
	"payTransactionId": true, "totalAmount": true, "currency": true, "verDept": true,
	"payType": true, "tradingTime": true, "note": true,
}

// keyHints names the right key for mistakes that are known to happen.
var keyHints = map[string]string{
	"payExchangeInfoList": customs.KeyLists,
	"payTransactionID":    "payTransactionId",
	"initialRequest":      "initalRequest",
	"initialResponse":     "initalResponse",
}

// splitLine splits a payment line, which is valid JSON, into a head object
// (the head members, raw) and the raw payExchangeInfoLists value ("[]" when
// absent, for Validate to report).
func splitLine(b []byte) (head, lists []byte, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	head = append(make([]byte, 0, len(b)), '{')
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
		}
		switch {
		case seen[k]:
			return nil, nil, fmt.Errorf("%w: key %q given more than once", ErrMalformed, k)
		case k == customs.KeyLists:
			lists = v
		case k == "guid":
			return nil, nil, fmt.Errorf("%w: unknown key \"guid\" (the guid is chosen per upload, not recorded)", ErrMalformed)
		case headKeys[k]:
			if len(head) > 1 {
				head = append(head, ',')
			}
			kb, _ := json.Marshal(k)
			head = append(head, kb...)
			head = append(head, ':')
			head = append(head, v...)
		case keyHints[k] != "":
			return nil, nil, fmt.Errorf("%w: unknown key %q (the key is %q)", ErrMalformed, k, keyHints[k])
		default:
			return nil, nil, fmt.Errorf("%w: unknown key %q", ErrMalformed, shortKey(k))
		}
		seen[k] = true
	}
	if lists == nil {
		lists = []byte("[]")
	}
	return append(head, '}'), lists, nil
}

// shortKey cuts an unknown key for an error message.
func shortKey(k string) string {
	r := []rune(k)
	if len(r) > 32 {
		return string(r[:32]) + "…"
	}
	return k
}

// Reasons returns the reasons of a refusal as short texts that name fields
// but never repeat payment data: one per violation of a
// *ValidationError, otherwise the error's message.
func Reasons(err error) []string {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		out := make([]string, len(ve.Violations))
		for i, v := range ve.Violations {
			out[i] = v.String()
		}
		return out
	}
	return []string{err.Error()}
}
