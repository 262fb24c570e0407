package customs

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits applied by ParseOpenReq.
const (
	// MaxOpenReqBody is the largest platDataOpen request body accepted, in
	// bytes. A real one is about 100 bytes.
	MaxOpenReqBody = 64 << 10
	// MaxSessionIDLen is the longest sessionID accepted, in characters.
	MaxSessionIDLen = 100
	// MaxOrderNoLen is the longest orderNo, in characters (C..60).
	MaxOrderNoLen = 60
)

// OpenReqContentType is the content type customs uses for platDataOpen.
const OpenReqContentType = "application/x-www-form-urlencoded"

// OpenReq is the openReq that customs sends to the platform's platDataOpen
// address: which order it wants, under which session.
type OpenReq struct {
	// OrderNo is the order customs asks about.
	OrderNo string `json:"orderNo"`
	// SessionID is customs' session; the upload must echo it unchanged.
	SessionID string `json:"sessionID"`
	// ServiceTime is customs' time of the request, in milliseconds since the
	// epoch, or 0 when customs did not send it.
	ServiceTime int64 `json:"serviceTime"`
}

// JSON returns the openReq as customs sends it:
// {"orderNo":"…","sessionID":"…","serviceTime":1533271903898}.
func (r OpenReq) JSON() []byte {
	b := []byte(`{"orderNo":`)
	b = AppendJSONString(b, r.OrderNo)
	b = append(b, `,"sessionID":`...)
	b = AppendJSONString(b, r.SessionID)
	b = append(b, `,"serviceTime":`...)
	b = strconv.AppendInt(b, r.ServiceTime, 10)
	return append(b, '}')
}

// Form returns the form-encoded body customs posts to platDataOpen, with
// content type OpenReqContentType: openReq=<URL-encoded JSON>.
func (r OpenReq) Form() []byte {
	return []byte("openReq=" + url.QueryEscape(string(r.JSON())))
}

// ParseOpenReq reads the body of a platDataOpen call. It accepts what customs
// and the web stacks in front of the platform are known to send:
//
//   - a form (application/x-www-form-urlencoded, with any charset
//     parameter, or without a content type) whose field openReq holds the
//     JSON, URL-encoded or not;
//   - multipart/form-data with a part named openReq;
//   - the JSON itself as the body, whatever the content type says;
//   - the JSON HTML-escaped ({&quot;orderNo&quot;:…}), backslash-escaped
//     ({\"orderNo\":…}) or wrapped in a JSON string;
//   - serviceTime as a number, as a string of digits, or absent (0);
//   - white space around the body and the value.
//
// orderNo and sessionID are required and must be non-empty JSON strings (a
// JSON number of digits is taken as its text) of at most MaxOrderNoLen and
// MaxSessionIDLen characters, valid UTF-8, without control characters. They
// are returned unchanged, never trimmed. The body must be valid UTF-8 once
// decoded; a charset parameter is not used for decoding, as both values are
// plain ASCII in practice. Errors are *ParseError values with a short
// message, such as "openReq: missing orderNo".
func ParseOpenReq(contentType string, body []byte) (OpenReq, error) {
	if len(body) > MaxOpenReqBody {
		return OpenReq{}, parseErr("openReq", "", ErrTooLarge, "body larger than %d bytes", MaxOpenReqBody)
	}
	media, params, _ := mime.ParseMediaType(contentType)
	trimmed := trimSpaceBOM(body)
	if len(trimmed) == 0 {
		return OpenReq{}, parseErr("openReq", "", ErrMissing, "empty body")
	}
	var candidates []string
	var err error
	switch {
	case media == "multipart/form-data":
		candidates, err = multipartOpenReq(body, params["boundary"])
	case trimmed[0] == '{' || trimmed[0] == '"' || trimmed[0] == '[':
		candidates = []string{string(trimmed)}
	default:
		candidates, err = formOpenReq(string(trimmed))
	}
	if err != nil {
		return OpenReq{}, err
	}
	for _, c := range candidates {
		if !utf8.ValidString(c) {
			return OpenReq{}, parseErr("openReq", "", ErrMalformed, "not valid UTF-8")
		}
		if obj := findObject(c, 2); obj != nil {
			return decodeOpenReq(obj)
		}
	}
	if json.Valid([]byte(candidates[0])) {
		return OpenReq{}, parseErr("openReq", "", ErrMalformed, "not a JSON object")
	}
	return OpenReq{}, parseErr("openReq", "", ErrMalformed, "not JSON")
}

func trimSpaceBOM(b []byte) []byte {
	b = bytes.TrimSpace(b)
	return bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\uFEFF")))
}

// formOpenReq returns the possible values of the openReq form field: the
// decoded field, then, for a value that was sent without URL encoding and
// was cut at an & (as &quot; would be), everything after "openReq=".
func formOpenReq(body string) ([]string, error) {
	vals, _ := url.ParseQuery(body) // a bad pair elsewhere must not hide openReq
	var found []string
	for k, v := range vals {
		if k == "openReq" || (found == nil && strings.EqualFold(strings.TrimSpace(k), "openReq")) {
			found = v
		}
	}
	for _, v := range found[min(1, len(found)):] {
		if v != found[0] {
			return nil, parseErr("openReq", "", ErrMalformed, "form field openReq given more than once")
		}
	}
	var candidates []string
	if len(found) > 0 {
		candidates = append(candidates, found[0])
	}
	if i := indexFieldStart(body, "openReq="); i >= 0 {
		rest := body[i+len("openReq="):]
		if u, err := url.QueryUnescape(rest); err == nil {
			rest = u
		}
		candidates = append(candidates, rest)
	}
	if len(candidates) == 0 {
		return nil, parseErr("openReq", "", ErrMissing, "no openReq form field")
	}
	return candidates, nil
}

// indexFieldStart returns the index of the first pair of the form body that
// starts with prefix, compared without regard to ASCII case, or -1. Byte
// offsets are those of body itself, whatever bytes it holds.
func indexFieldStart(body, prefix string) int {
	for i := 0; i+len(prefix) <= len(body); i++ {
		if (i == 0 || body[i-1] == '&') && strings.EqualFold(body[i:i+len(prefix)], prefix) {
			return i
		}
	}
	return -1
}

// multipartOpenReq returns the part named openReq of a multipart form.
func multipartOpenReq(body []byte, boundary string) ([]string, error) {
	if boundary == "" {
		return nil, parseErr("openReq", "", ErrMalformed, "multipart form without boundary")
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := r.NextPart()
		if err != nil {
			return nil, parseErr("openReq", "", ErrMissing, "no openReq form field")
		}
		if p.FormName() == "openReq" {
			v, err := io.ReadAll(io.LimitReader(p, MaxOpenReqBody))
			if err != nil {
				return nil, parseErr("openReq", "", ErrMalformed, "bad multipart form")
			}
			return []string{string(v)}, nil
		}
	}
}

// findObject undoes the escaping that web stacks add to the openReq value
// and returns the first form of it that is a JSON object. depth bounds how
// often a JSON string holding JSON is unwrapped.
func findObject(v string, depth int) []byte {
	v = strings.TrimSpace(v)
	forms := []string{v}
	h := v
	for i := 0; i < 2 && strings.Contains(h, "&"); i++ {
		h = html.UnescapeString(h)
		forms = append(forms, strings.TrimSpace(h))
	}
	for _, f := range forms[:len(forms):len(forms)] {
		if strings.Contains(f, `\`) {
			forms = append(forms, unbackslash(f))
		}
	}
	for _, f := range forms {
		if !json.Valid([]byte(f)) {
			continue
		}
		switch {
		case strings.HasPrefix(f, "{"):
			return []byte(f)
		case strings.HasPrefix(f, `"`) && depth > 0:
			var inner string
			if json.Unmarshal([]byte(f), &inner) == nil {
				if obj := findObject(inner, depth-1); obj != nil {
					return obj
				}
			}
		}
	}
	return nil
}

// unbackslash removes one level of backslash escaping: \" becomes ", \\
// becomes \ and \/ becomes /; other backslashes stay.
func unbackslash(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\/`, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// decodeOpenReq reads the members of the openReq JSON object. Keys are
// matched case-insensitively (sessionId is taken for sessionID); unknown
// keys are ignored.
func decodeOpenReq(obj []byte) (OpenReq, error) {
	var m struct {
		OrderNo     json.RawMessage `json:"orderNo"`
		SessionID   json.RawMessage `json:"sessionID"`
		ServiceTime json.RawMessage `json:"serviceTime"`
	}
	if err := json.Unmarshal(obj, &m); err != nil {
		return OpenReq{}, parseErr("openReq", "", ErrMalformed, "not JSON")
	}
	var r OpenReq
	var err error
	if r.OrderNo, err = openReqText("orderNo", m.OrderNo, MaxOrderNoLen); err != nil {
		return OpenReq{}, err
	}
	if r.SessionID, err = openReqText("sessionID", m.SessionID, MaxSessionIDLen); err != nil {
		return OpenReq{}, err
	}
	if r.ServiceTime, err = openReqTime(m.ServiceTime); err != nil {
		return OpenReq{}, err
	}
	return r, nil
}

// openReqText decodes a required text member: a JSON string, or a JSON
// number made of digits, taken as its text.
func openReqText(key string, raw json.RawMessage, maxLen int) (string, error) {
	var s string
	switch {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '"':
		if json.Unmarshal(raw, &s) != nil {
			return "", parseErr("openReq", key, ErrMalformed, "%s is not a JSON string", key)
		}
		if hasLoneSurrogate(raw) {
			return "", parseErr("openReq", key, ErrInvalid, "%s holds an unpaired surrogate escape", key)
		}
	case strings.Trim(string(raw), "0123456789") == "":
		s = string(raw)
	default:
		return "", parseErr("openReq", key, ErrInvalid, "%s must be a string", key)
	}
	switch {
	case s == "":
		return "", parseErr("openReq", key, ErrMissing, "missing %s", key)
	case !utf8.ValidString(s):
		return "", parseErr("openReq", key, ErrInvalid, "%s is not valid UTF-8", key)
	case utf8.RuneCountInString(s) > maxLen:
		return "", parseErr("openReq", key, ErrInvalid, "%s longer than %d characters", key, maxLen)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", parseErr("openReq", key, ErrInvalid, "%s contains control characters", key)
	}
	return s, nil
}

// openReqTime decodes serviceTime: a whole number of milliseconds, as a
// JSON number or a string of digits; absent, null or "" give 0.
func openReqTime(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, parseErr("openReq", "serviceTime", ErrMalformed, "serviceTime is not a JSON string")
		}
		s = strings.TrimSpace(s)
	}
	if s == "" || s == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strings.Trim(s, "0123456789") != "" {
		return 0, parseErr("openReq", "serviceTime", ErrInvalid, "serviceTime is not a whole number of milliseconds")
	}
	return n, nil
}
