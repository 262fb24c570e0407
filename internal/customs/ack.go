package customs

import (
	"errors"
	"strconv"
	"time"
)

// Answer codes of the customs interface. 10000 is success, 20000 failure,
// and 20001 to 21000 are other errors.
const (
	// CodeSuccess acknowledges a request. The platform answers it to every
	// well-formed openReq, even for an order it does not know yet.
	CodeSuccess = "10000"
	// CodeFailure is the general failure.
	CodeFailure = "20000"
	// CodeBadRequest answers a request that could not be read (see
	// ParseOpenReq).
	CodeBadRequest = "20001"
	// CodeUnavailable answers a request that was read but could not be
	// recorded, for example because storage is unavailable.
	CodeUnavailable = "20002"
)

// AckContentType is the content type of an Ack.
const AckContentType = "application/json; charset=utf-8"

// Ack is the platform's immediate answer to platDataOpen:
// {"code":"10000","message":"","serviceTime":1533271903898}.
type Ack struct {
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Message is empty on success, or a short description otherwise.
	Message string `json:"message"`
	// ServiceTime is the time of the answer, in milliseconds since the
	// epoch.
	ServiceTime int64 `json:"serviceTime"`
}

// NewAck returns an Ack with the given code and message, stamped with now.
func NewAck(code, message string, now time.Time) Ack {
	return Ack{Code: code, Message: message, ServiceTime: now.UnixMilli()}
}

// SuccessAck returns the 10000 answer with an empty message, stamped with
// now.
func SuccessAck(now time.Time) Ack {
	return NewAck(CodeSuccess, "", now)
}

// CodeFor maps an error to the code of an answer: nil is CodeSuccess, a
// request that could not be read (a *ParseError) is CodeBadRequest, and any
// other error is CodeFailure.
func CodeFor(err error) string {
	var pe *ParseError
	switch {
	case err == nil:
		return CodeSuccess
	case errors.As(err, &pe):
		return CodeBadRequest
	default:
		return CodeFailure
	}
}

// JSON returns the answer as compact JSON with the keys code, message and
// serviceTime, without HTML escaping.
func (a Ack) JSON() []byte {
	b := []byte(`{"code":`)
	b = AppendJSONString(b, a.Code)
	b = append(b, `,"message":`...)
	b = AppendJSONString(b, a.Message)
	b = append(b, `,"serviceTime":`...)
	b = strconv.AppendInt(b, a.ServiceTime, 10)
	return append(b, '}')
}
