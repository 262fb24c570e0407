package ceb179

import (
	"errors"
	"strings"
)

// Amount is the exact decimal text of a totalAmount, such as "88.08" or
// "5.0". It is never converted to a floating-point number: the bytes that
// are signed must be the bytes that are uploaded, and "5.0" must stay "5.0".
//
// In JSON an Amount is a number. MarshalJSON writes the text verbatim;
// UnmarshalJSON keeps the text of a JSON number exactly as it appears and
// rejects a JSON string, because customs expects totalAmount as a number and
// a quoted amount in a document is a mistake worth reporting.
type Amount string

// MarshalJSON writes the amount's text as a JSON number, unchanged. It fails
// if the text is not a valid JSON number.
func (a Amount) MarshalJSON() ([]byte, error) {
	if !isJSONNumber(string(a)) {
		return nil, errors.New("totalAmount: not a JSON number")
	}
	return []byte(a), nil
}

// UnmarshalJSON keeps the exact text of a JSON number. A JSON null leaves
// the amount unchanged; a JSON string or any other value is an error.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	switch {
	case s == "null":
		return nil
	case strings.HasPrefix(s, `"`):
		return errors.New("totalAmount: must be a JSON number, not a string")
	case !isJSONNumber(s):
		return errors.New("totalAmount: not a JSON number")
	}
	*a = Amount(s)
	return nil
}

// String returns the amount's text.
func (a Amount) String() string {
	return string(a)
}

// Check reports whether the amount satisfies the N19,5 rule of the
// specification: plain decimal text (no sign, no exponent, no leading
// zeros), at most 14 digits before the point and 5 after, and greater than
// zero. The error message names the broken rule without repeating the text.
func (a Amount) Check() error {
	if msg := amountProblem(string(a)); msg != "" {
		return errors.New("totalAmount: " + msg)
	}
	return nil
}

// ParseAmount returns s as an Amount if it satisfies Check.
func ParseAmount(s string) (Amount, error) {
	a := Amount(s)
	if err := a.Check(); err != nil {
		return "", err
	}
	return a, nil
}

// amountProblem describes what is wrong with the decimal text s, or returns
// "" if s is a valid positive N19,5 amount.
func amountProblem(s string) string {
	if s == "" {
		return "required"
	}
	if strings.HasPrefix(s, "-") {
		if isJSONNumber(s) {
			return "must be greater than 0"
		}
		return "not a decimal number"
	}
	if strings.ContainsAny(s, "eE") {
		if isJSONNumber(s) {
			return "must be plain decimal text, without an exponent"
		}
		return "not a decimal number"
	}
	if !isJSONNumber(s) {
		return "not a decimal number"
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if len(intPart) > 14 {
		return "more than 14 digits before the decimal point"
	}
	if len(frac) > 5 {
		return "more than 5 digits after the decimal point"
	}
	if strings.Trim(intPart+frac, "0") == "" {
		return "must be greater than 0"
	}
	return ""
}

// isJSONNumber reports whether s is exactly one number in the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool {
	return c >= '0' && c <= '9'
}
