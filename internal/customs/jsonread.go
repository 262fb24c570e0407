package customs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// checkJSON reports whether b is exactly one JSON value, with a short
// message that names the byte offset of a syntax error.
func checkJSON(what string, b []byte) error {
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return parseErr(what, "", ErrMalformed, "not JSON (syntax error at byte %d)", se.Offset)
		}
		return parseErr(what, "", ErrMalformed, "not JSON")
	}
	return nil
}

// keyHints names the right key for mistakes that are known to happen.
var keyHints = map[string]string{
	"payExchangeInfoList": KeyLists,
	"sessionId":           KeySessionID,
	"payTransactionID":    "payTransactionId",
	"initialRequest":      "initalRequest",
	"initialResponse":     "initalResponse",
}

// readObject reads raw, which must be one valid JSON value, as an object and
// returns the raw values of its members. Keys are matched exactly (JSON is
// case sensitive, encoding/json is not); unknown and repeated keys are
// errors. Missing keys are not: the caller decides what is required.
func readObject(what, path string, raw []byte, allowed ...string) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, parseErr(what, path, ErrMalformed, "%s must be a JSON object", nameOf(path))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, parseErr(what, path, ErrMalformed, "%s: not JSON", nameOf(path))
	}
	members := make(map[string]json.RawMessage, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, parseErr(what, path, ErrMalformed, "%s: not JSON", nameOf(path))
		}
		k, _ := tok.(string)
		if !contains(allowed, k) {
			return nil, parseErr(what, path, ErrMalformed, "%s: %s", nameOf(path), unknownKey(k, allowed))
		}
		if _, dup := members[k]; dup {
			return nil, parseErr(what, join(path, k), ErrMalformed, "%s: key %q given more than once", nameOf(path), k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, parseErr(what, join(path, k), ErrMalformed, "%s: not JSON", join(path, k))
		}
		members[k] = v
	}
	return members, nil
}

// readArray reads raw, which must be one valid JSON value, as an array and
// returns the raw values of its elements.
func readArray(what, path string, raw []byte) ([]json.RawMessage, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, parseErr(what, path, ErrMalformed, "%s must be a JSON array", path)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, parseErr(what, path, ErrMalformed, "%s: not JSON", path)
	}
	return elems, nil
}

// readString decodes raw as a JSON string; any other JSON value, null
// included, is an error. So is an escaped surrogate that is not part of a
// pair (such as a lone \ud800): encoding/json would silently turn it into
// U+FFFD, and the data must not change on its way to customs.
func readString(what, path string, raw []byte) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", parseErr(what, path, ErrMalformed, "%s must be a JSON string", path)
	}
	if hasLoneSurrogate(raw) {
		return "", parseErr(what, path, ErrMalformed, "%s holds an unpaired surrogate escape", path)
	}
	return s, nil
}

// hasLoneSurrogate reports whether the JSON string literal raw holds a \u
// escape of a UTF-16 surrogate that is not a high surrogate directly followed
// by an escaped low surrogate.
func hasLoneSurrogate(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`\u`)) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		r := escapedUnit(raw, i)
		switch {
		case r < 0xd800 || r > 0xdfff:
		case r >= 0xdc00:
			return true // low surrogate without a high one
		default:
			if lo := escapedUnit(raw, i+6); lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 6 // skip the low half too
		}
		i += 5
	}
	return false
}

// escapedUnit returns the UTF-16 unit of the \uXXXX escape at raw[i:], or
// -1 if there is none.
func escapedUnit(raw []byte, i int) int {
	if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
		return -1
	}
	n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	if err != nil {
		return -1
	}
	return int(n)
}

// readDigits decodes raw as a JSON string or a JSON number holding only
// decimal digits, such as a serviceTime, and returns the digits. isNumber
// reports which of the two forms was used.
func readDigits(what, path string, raw []byte) (digits string, isNumber bool, err error) {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if s, err = readString(what, path, raw); err != nil {
			return "", false, err
		}
	} else {
		isNumber = true
	}
	if s == "" {
		return "", isNumber, parseErr(what, path, ErrMissing, "missing %s", path)
	}
	if !isServiceTime(s) {
		return "", isNumber, parseErr(what, path, ErrInvalid, "%s must be decimal digits (milliseconds since the epoch)", path)
	}
	return s, isNumber, nil
}

// isServiceTime reports whether s is 1 to 20 decimal digits.
func isServiceTime(s string) bool {
	return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == ""
}

func unknownKey(k string, allowed []string) string {
	if right, ok := keyHints[k]; ok && contains(allowed, right) {
		return fmt.Sprintf("unknown key %q (the key is %q)", k, right)
	}
	for _, a := range allowed {
		if strings.EqualFold(a, k) {
			return fmt.Sprintf("unknown key %q (keys are case sensitive: %q)", k, a)
		}
	}
	return fmt.Sprintf("unknown key %q", short(k))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// join appends a key to a path: join("payExchangeInfoHead", "guid") is
// "payExchangeInfoHead.guid"; join("", "sessionID") is "sessionID".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// nameOf names a path in a message; the empty path is the whole input.
func nameOf(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}
