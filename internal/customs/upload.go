package customs

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/url"
	"strconv"
	"strings"
)

// Addresses of customs' realTimeDataUpload.
const (
	// TestUploadURL is the joint-test (联调) endpoint. It does not verify
	// signatures.
	TestUploadURL = "https://swapptest.singlewindow.cn/ceb2grab/grab/realTimeDataUpload"
	// ProductionUploadURL is the production endpoint.
	ProductionUploadURL = "https://customs.chinaport.gov.cn/ceb2grab/grab/realTimeDataUpload"
)

// UploadContentType is the content type of an upload form.
const UploadContentType = "application/x-www-form-urlencoded; charset=UTF-8"

// EncodeUploadForm returns the body of a realTimeDataUpload request:
// payExInfoStr=<URL-encoded document>. URL encoding matters: item links hold
// & and base64 signatures hold +.
func EncodeUploadForm(payExInfoStr []byte) []byte {
	return []byte("payExInfoStr=" + url.QueryEscape(string(payExInfoStr)))
}

// ParseUploadForm reads the body of a realTimeDataUpload request, as a
// customs simulator receives it, and reads its payExInfoStr field with
// ReadPayExInfoStr. The content type may be empty or carry any charset.
func ParseUploadForm(contentType string, body []byte) (*Received, error) {
	if len(body) > 2*MaxPayExInfoStr {
		return nil, parseErr("payExInfoStr", "", ErrTooLarge, "body larger than %d bytes", 2*MaxPayExInfoStr)
	}
	if media, _, err := mime.ParseMediaType(contentType); err == nil && media != "application/x-www-form-urlencoded" {
		return nil, parseErr("payExInfoStr", "", ErrMalformed, "content type is not a URL-encoded form")
	}
	vals, err := url.ParseQuery(string(bytes.TrimSpace(body)))
	if err != nil {
		return nil, parseErr("payExInfoStr", "", ErrMalformed, "not a URL-encoded form")
	}
	v, ok := vals["payExInfoStr"]
	switch {
	case !ok:
		return nil, parseErr("payExInfoStr", "", ErrMissing, "no payExInfoStr form field")
	case len(v) > 1:
		return nil, parseErr("payExInfoStr", "", ErrMalformed, "form field payExInfoStr given more than once")
	}
	return ReadPayExInfoStr([]byte(v[0]))
}

// UploadAck is customs' answer to realTimeDataUpload, such as
// {"code":"10000","message":"上传成功","total":0,"serviceTime":1553047681000}
// or {"code":"20000","message":"certNo : certNo不为空;",...}.
type UploadAck struct {
	// Code is CodeSuccess when customs stored the data.
	Code string
	// Message is customs' message, which names validation problems.
	Message string
	// Total is customs' total, when given.
	Total int64
	// ServiceTime is customs' time, when given, in milliseconds.
	ServiceTime int64
}

// Accepted reports whether customs accepted the upload.
func (a UploadAck) Accepted() bool {
	return a.Code == CodeSuccess
}

// ParseUploadAck reads customs' answer to an upload. It is lenient: code,
// total and serviceTime may be JSON strings or numbers, unknown keys are
// ignored, and a missing total or serviceTime is 0. The answer must be a
// JSON object with a non-empty code.
func ParseUploadAck(b []byte) (UploadAck, error) {
	const what = "uploadAck"
	var m struct {
		Code        json.RawMessage `json:"code"`
		Message     json.RawMessage `json:"message"`
		Total       json.RawMessage `json:"total"`
		ServiceTime json.RawMessage `json:"serviceTime"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &m) != nil {
		return UploadAck{}, parseErr(what, "", ErrMalformed, "not a JSON object")
	}
	var a UploadAck
	a.Code = looseText(m.Code)
	if a.Code == "" {
		return UploadAck{}, parseErr(what, "code", ErrMissing, "missing code")
	}
	a.Message = looseText(m.Message)
	a.Total, _ = strconv.ParseInt(strings.TrimSpace(looseText(m.Total)), 10, 64)
	a.ServiceTime, _ = strconv.ParseInt(strings.TrimSpace(looseText(m.ServiceTime)), 10, 64)
	return a, nil
}

// looseText returns a JSON string's value or any other literal's text; null
// and absent give "". The text is valid UTF-8 (invalid bytes are replaced),
// as the attempt records that keep it must be.
func looseText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}
