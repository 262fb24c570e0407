package customs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxPayExInfoStr is the largest payExInfoStr or document, in bytes, that
// ReadPayExInfoStr and ReadDocument accept. Real documents are far smaller:
// the two raw fields are at most 8000 characters each.
const MaxPayExInfoStr = 4 << 20

// Unsigned is a payExInfoStr before signing: the exact bytes that are signed
// and then uploaded. Head and Lists are JSON texts, normally from MarshalHead
// and MarshalLists or kept raw by ReadPayExInfoStr; they are embedded
// unchanged in both the sign source and the uploaded document, so the
// signature covers exactly what is sent.
type Unsigned struct {
	// SessionID is customs' sessionID, echoed unchanged.
	SessionID string
	// Head is the JSON text of payExchangeInfoHead.
	Head []byte
	// Lists is the JSON text of payExchangeInfoLists.
	Lists []byte
	// ServiceTime is the upload time in milliseconds since the epoch, as
	// decimal text.
	ServiceTime string
}

// NewUnsigned builds the canonical unsigned document for an upload at
// uploadTime: the head and lists from MarshalHead and MarshalLists, and
// serviceTime from FormatServiceTime. It does not apply the field rules;
// call Validate first.
func NewUnsigned(sessionID string, h Head, orders []Order, uploadTime time.Time) (Unsigned, error) {
	d := Document{SessionID: sessionID, Head: h, Lists: orders, ServiceTime: FormatServiceTime(uploadTime)}
	return d.Canonical()
}

// FormatServiceTime returns t as a serviceTime: milliseconds since the
// epoch, in decimal.
func FormatServiceTime(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// SignSource returns the sign source (加签原文), byte-exact:
//
//	"sessionID":"<sid>"||"payExchangeInfoHead":"<head>"||"payExchangeInfoLists":"<lists>"||"serviceTime":"<t>"
//
// Every key and value is wrapped in double quotes, including the two JSON
// texts, whose own quotes are not escaped. Nothing is escaped at all: the
// values are copied as they are.
func (u Unsigned) SignSource() []byte {
	b := make([]byte, 0, len(u.SessionID)+len(u.Head)+len(u.Lists)+len(u.ServiceTime)+96)
	b = append(b, `"sessionID":"`...)
	b = append(b, u.SessionID...)
	b = append(b, `"||"payExchangeInfoHead":"`...)
	b = append(b, u.Head...)
	b = append(b, `"||"payExchangeInfoLists":"`...)
	b = append(b, u.Lists...)
	b = append(b, `"||"serviceTime":"`...)
	b = append(b, u.ServiceTime...)
	return append(b, '"')
}

// Digest returns the lower-case hex SHA-256 of the sign source. It
// identifies a sign job without carrying payment data.
func (u Unsigned) Digest() string {
	sum := sha256.Sum256(u.SignSource())
	return hex.EncodeToString(sum[:])
}

// PayExInfoStr returns the document to upload, compact, in the order
//
//	{"sessionID":..,"payExchangeInfoHead":<head>,"payExchangeInfoLists":<lists>,"serviceTime":"..","certNo":"..","signValue":".."}
//
// with the head and lists bytes embedded exactly as they are in the sign
// source and serviceTime written as a JSON string. The result is the value
// of the form field payExInfoStr; it still has to be URL-encoded (see
// EncodeUploadForm). Head and Lists must be valid JSON; use Check when they
// do not come from this package.
func (u Unsigned) PayExInfoStr(certNo, signValue string) []byte {
	b := make([]byte, 0, len(u.SessionID)+len(u.Head)+len(u.Lists)+len(certNo)+len(signValue)+128)
	b = append(b, `{"sessionID":`...)
	b = AppendJSONString(b, u.SessionID)
	b = append(b, `,"payExchangeInfoHead":`...)
	b = append(b, u.Head...)
	b = append(b, `,"payExchangeInfoLists":`...)
	b = append(b, u.Lists...)
	b = append(b, `,"serviceTime":`...)
	b = AppendJSONString(b, u.ServiceTime)
	b = append(b, `,"certNo":`...)
	b = AppendJSONString(b, certNo)
	b = append(b, `,"signValue":`...)
	b = AppendJSONString(b, signValue)
	return append(b, '}')
}

// Check reports whether u can be signed and uploaded as it is: the head is a
// JSON object and the lists a JSON array, each without white space around
// it, everything is valid UTF-8, serviceTime is
// decimal digits, and sessionID is not empty. It does not apply the field
// rules; see Validate.
func (u Unsigned) Check() error {
	const what = "unsigned"
	switch {
	case u.SessionID == "":
		return parseErr(what, KeySessionID, ErrMissing, "missing sessionID")
	case !utf8.ValidString(u.SessionID):
		return parseErr(what, KeySessionID, ErrMalformed, "sessionID: not valid UTF-8")
	}
	if !isServiceTime(u.ServiceTime) {
		return parseErr(what, KeyServiceTime, ErrInvalid, "serviceTime must be decimal digits (milliseconds since the epoch)")
	}
	for _, part := range []struct {
		key, kind string
		b         []byte
	}{{KeyHead, "object", u.Head}, {KeyLists, "array", u.Lists}} {
		if !utf8.Valid(part.b) {
			return parseErr(what, part.key, ErrMalformed, "%s: not valid UTF-8", part.key)
		}
		// The value must start and end with its brackets: white space
		// around it would end up inside the quotes of the sign source.
		open, close := byte('{'), byte('}')
		if part.kind == "array" {
			open, close = '[', ']'
		}
		if len(part.b) < 2 || part.b[0] != open || part.b[len(part.b)-1] != close || !json.Valid(part.b) {
			return parseErr(what, part.key, ErrMalformed, "%s: not a JSON %s", part.key, part.kind)
		}
	}
	return nil
}

// Received is a payExInfoStr as received, for example by a verifier or a
// customs simulator. The embedded Unsigned holds the head and lists values
// exactly as they appear in the input, so SignSource rebuilds the sign
// source from the received bytes, never from a re-serialisation.
type Received struct {
	Unsigned
	// CertNo is the certificate serial number, as given.
	CertNo string
	// SignValue is the base64 signature, as given.
	SignValue string
	// ServiceTimeNumber reports that serviceTime was a JSON number rather
	// than a JSON string. Unsigned.ServiceTime holds its text either way.
	ServiceTimeNumber bool
	// Decoded holds the decoded head and lists, for the field rules (see
	// Document.Validate).
	Decoded Document
}

// ReadPayExInfoStr reads a payExInfoStr (the value of the form field, not
// URL-encoded). It must be one JSON object with the six keys sessionID,
// payExchangeInfoHead, payExchangeInfoLists, serviceTime, certNo and
// signValue, spelled exactly, each once, in any order; leading and trailing
// white space is allowed. serviceTime may be a string or a number of
// decimal digits. The head and lists values are kept byte for byte
// (so "totalAmount":5.0 stays 5.0) and also decoded into r.Decoded; unknown
// keys inside them and a quoted totalAmount are errors. The field rules are
// not applied here: call r.Decoded.Validate.
func ReadPayExInfoStr(b []byte) (*Received, error) {
	const what = "payExInfoStr"
	b = bytes.TrimSpace(b)
	top, err := readTop(what, b, KeySignValue, KeyCertNo)
	if err != nil {
		return nil, err
	}
	r := &Received{Unsigned: top.unsigned, ServiceTimeNumber: top.serviceTimeNumber, Decoded: top.doc}
	for _, f := range []struct {
		key string
		dst *string
	}{{KeyCertNo, &r.CertNo}, {KeySignValue, &r.SignValue}} {
		raw, ok := top.members[f.key]
		if !ok {
			return nil, parseErr(what, f.key, ErrMissing, "missing %s", f.key)
		}
		if *f.dst, err = readString(what, f.key, raw); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// topLevel is what readTop found.
type topLevel struct {
	members           map[string][]byte
	unsigned          Unsigned
	doc               Document
	serviceTimeNumber bool
}

// readTop reads the parts common to a payExInfoStr and a document to sign:
// the four required members, decoded and kept raw. extra names the other
// keys the caller allows.
func readTop(what string, b []byte, extra ...string) (*topLevel, error) {
	if len(b) > MaxPayExInfoStr {
		return nil, parseErr(what, "", ErrTooLarge, "larger than %d bytes", MaxPayExInfoStr)
	}
	if len(b) == 0 {
		return nil, parseErr(what, "", ErrMissing, "empty")
	}
	if !utf8.Valid(b) {
		return nil, parseErr(what, "", ErrMalformed, "not valid UTF-8")
	}
	if err := checkJSON(what, b); err != nil {
		return nil, err
	}
	allowed := append([]string{KeySessionID, KeyHead, KeyLists, KeyServiceTime}, extra...)
	members, err := readObject(what, "", b, allowed...)
	if err != nil {
		return nil, err
	}
	for _, k := range allowed[:4] {
		if _, ok := members[k]; !ok {
			return nil, parseErr(what, k, ErrMissing, "missing %s", k)
		}
	}
	t := &topLevel{members: make(map[string][]byte, len(members))}
	for k, v := range members {
		t.members[k] = v
	}
	if t.doc.SessionID, err = readString(what, KeySessionID, members[KeySessionID]); err != nil {
		return nil, err
	}
	if t.doc.ServiceTime, t.serviceTimeNumber, err = readDigits(what, KeyServiceTime, members[KeyServiceTime]); err != nil {
		return nil, err
	}
	if t.doc.Head, err = decodeHead(what, members[KeyHead]); err != nil {
		return nil, err
	}
	if t.doc.Lists, err = decodeLists(what, members[KeyLists]); err != nil {
		return nil, err
	}
	t.unsigned = Unsigned{
		SessionID:   t.doc.SessionID,
		Head:        members[KeyHead],
		Lists:       members[KeyLists],
		ServiceTime: t.doc.ServiceTime,
	}
	return t, nil
}
