package signer

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"unicode/utf8"
)

// PIN is a device PIN. It never prints, logs or marshals its value.
type PIN struct{ v string }

// NewPIN returns a PIN holding s.
func NewPIN(s string) PIN { return PIN{v: s} }

// Reveal returns the PIN's value, to hand to the device and nowhere else.
func (p PIN) Reveal() string { return p.v }

// Empty reports whether no PIN is set.
func (p PIN) Empty() bool { return p.v == "" }

// String returns a placeholder, never the PIN.
func (p PIN) String() string { return "[PIN redacted]" }

// GoString returns a placeholder, never the PIN.
func (p PIN) GoString() string { return "signer.PIN{[redacted]}" }

// LogValue keeps the PIN out of slog output.
func (p PIN) LogValue() slog.Value { return slog.StringValue("[PIN redacted]") }

// MarshalText keeps the PIN out of JSON, YAML and other encodings.
func (p PIN) MarshalText() ([]byte, error) { return []byte("[PIN redacted]"), nil }

// LoadPIN reads a PIN from the file at path or, when path is empty, from
// the environment variable env. Neither set gives an empty PIN.
//
// The PIN is read strictly, because a PIN that is not what the operator
// typed reaches the card as a wrong PIN: a UTF-8 byte order mark (Notepad)
// and one line ending (LF or CRLF) at the end are removed; anything else
// that is not printable ASCII (a space, a tab, another line, a control
// character, a non-ASCII letter, UTF-16 text as PowerShell 5's `echo >
// file` writes it) is refused with an error that says what and where.
// Errors never include the PIN.
func LoadPIN(path, env string) (PIN, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return PIN{}, fmt.Errorf("read PIN file %s: %w", path, err)
		}
		v, err := cleanPIN(b)
		if err != nil {
			return PIN{}, fmt.Errorf("PIN file %s: %w; no PIN is sent until it is fixed", path, err)
		}
		return PIN{v: v}, nil
	}
	if env != "" {
		v, ok := os.LookupEnv(env)
		if !ok {
			return PIN{}, fmt.Errorf("PIN variable %s is not set", env)
		}
		v, err := cleanPIN([]byte(v))
		if err != nil {
			return PIN{}, fmt.Errorf("PIN variable %s: %w; no PIN is sent until it is fixed", env, err)
		}
		return PIN{v: v}, nil
	}
	return PIN{}, nil
}

// cleanPIN returns the PIN in b: a UTF-8 byte order mark and one trailing
// LF or CRLF removed, and the rest checked to be printable ASCII.
func cleanPIN(b []byte) (string, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return "", errors.New("the file is UTF-16 text (PowerShell 5 writes it with `echo ... > file`); save it as ASCII, e.g. Set-Content -Encoding ascii")
	case bytes.IndexByte(b, 0) >= 0:
		return "", errors.New("it holds NUL bytes (UTF-16 text without a byte order mark?); save it as ASCII")
	}
	b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
	if c, ok := bytes.CutSuffix(b, []byte("\r\n")); ok {
		b = c
	} else {
		b = bytes.TrimSuffix(b, []byte("\n"))
	}
	if len(b) == 0 {
		return "", errors.New("the PIN is empty")
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		pos := fmt.Sprintf("character %d of %d", utf8.RuneCount(b[:i])+1, utf8.RuneCount(b))
		switch {
		case r == ' ':
			return "", fmt.Errorf("a space at %s (the PIN must hold no spaces)", pos)
		case r == '\t':
			return "", fmt.Errorf("a tab at %s (the PIN must hold no whitespace)", pos)
		case r == '\r' || r == '\n':
			return "", fmt.Errorf("a line break at %s (the file must hold the PIN on one line, with at most one line ending)", pos)
		case r < 0x20 || r == 0x7F:
			return "", fmt.Errorf("a control character at %s", pos)
		case r == utf8.RuneError && size <= 1:
			return "", fmt.Errorf("a byte that is not UTF-8 text at %s (the PIN must be printable ASCII)", pos)
		case r > 0x7E:
			return "", fmt.Errorf("a non-ASCII character at %s (the PIN must be printable ASCII; a full-width digit?)", pos)
		}
		i += size
	}
	return string(b), nil
}
