package customs

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Kinds of parse error. A *ParseError wraps exactly one of them, so callers
// can test the kind with errors.Is.
var (
	// ErrMalformed means the input is not the expected encoding: not JSON,
	// not a form, not UTF-8, or a value of the wrong JSON type.
	ErrMalformed = errors.New("malformed")
	// ErrMissing means a required field is absent or empty.
	ErrMissing = errors.New("missing field")
	// ErrInvalid means a field is present but its value breaks a rule
	// (too long, control characters, not a number, ...).
	ErrInvalid = errors.New("invalid field")
	// ErrTooLarge means the input is larger than this package accepts.
	ErrTooLarge = errors.New("too large")
)

// ParseError reports why an openReq, a payExInfoStr or a document to sign
// could not be read. Its message is short, names the field or the problem,
// and never repeats the input.
type ParseError struct {
	// What names the thing being parsed: "openReq", "payExInfoStr",
	// "document", "uploadAck".
	What string
	// Field is the path of the offending field, or "" when the problem is
	// the input as a whole.
	Field string
	// Kind is one of ErrMalformed, ErrMissing, ErrInvalid, ErrTooLarge.
	Kind error
	// Detail is a short description such as "missing orderNo".
	Detail string
}

// Error returns the message, such as "openReq: missing orderNo".
func (e *ParseError) Error() string {
	return e.What + ": " + e.Detail
}

// Unwrap returns the kind of the error.
func (e *ParseError) Unwrap() error {
	return e.Kind
}

func parseErr(what, field string, kind error, format string, args ...any) *ParseError {
	return &ParseError{What: what, Field: field, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// short returns s cut to at most 32 runes, for naming an unexpected key in
// an error message without echoing large input.
func short(s string) string {
	const max = 32
	if !utf8.ValidString(s) {
		return "(not UTF-8)"
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
