package signer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

func TestKeyFile(t *testing.T) {
	sm2Key := eporttest.NewSM2Key(t, 1)
	rsaKey := eporttest.NewRSAKey(t, 2)
	for _, tc := range []struct {
		name    string
		key     []byte
		cert    []byte
		wantErr error
	}{
		{"ok SM2", sm2Key.KeyPEM, sm2Key.CertPEM, nil},
		{"ok RSA", rsaKey.KeyPEM, rsaKey.CertPEM, nil},
		{"fail key of another certificate", sm2Key.KeyPEM, rsaKey.CertPEM, signature.ErrKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kp, cp := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
			if err := os.WriteFile(kp, tc.key, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cp, tc.cert, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := signer.OpenKeyFile(kp, cp)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			v, err := s.Sign(context.Background(), source)
			if err != nil {
				t.Fatal(err)
			}
			if err := signature.Verify(s.Certificate(), source, v); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLoadPIN reads PIN files and variables strictly: a Notepad file
// (UTF-8 byte order mark, CRLF) gives the PIN; anything else that would
// reach the card as another PIN is refused with an error saying what, and
// never holding the PIN.
func TestLoadPIN(t *testing.T) {
	dir := t.TempDir()
	file := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "pin")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	utf16 := func(bom bool, s string) []byte {
		var b []byte
		if bom {
			b = []byte{0xFF, 0xFE}
		}
		for _, r := range s {
			b = append(b, byte(r), 0)
		}
		return b
	}
	t.Setenv("TEST_SIGNER_PIN", "33334444")
	t.Setenv("TEST_SIGNER_PIN_SPACE", "3333 4444")
	for _, tc := range []struct {
		name, path, env, want string
		err                   string
	}{
		{"ok file with LF", file([]byte("11112222\n")), "", "11112222", ""},
		{"ok file without a line ending", file([]byte("11112222")), "", "11112222", ""},
		{"ok Notepad: byte order mark and CRLF", file([]byte("\xEF\xBB\xBF11112222\r\n")), "", "11112222", ""},
		{"ok letters and signs", file([]byte("Ab3$-x_9\n")), "", "Ab3$-x_9", ""},
		{"ok env", "", "TEST_SIGNER_PIN", "33334444", ""},
		{"ok none", "", "", "", ""},
		{"fail trailing space", file([]byte("11112222 \n")), "", "", "a space at character 9 of 9"},
		{"fail leading space", file([]byte(" 11112222")), "", "", "a space at character 1"},
		{"fail tab", file([]byte("1111\t2222")), "", "", "a tab"},
		{"fail two line endings", file([]byte("11112222\n\n")), "", "", "a line break"},
		{"fail lone CR", file([]byte("11112222\r")), "", "", "a line break"},
		{"fail two lines", file([]byte("11112222\n33334444\n")), "", "", "a line break"},
		{"fail control character", file([]byte("1111\x1b2222")), "", "", "a control character"},
		{"fail full-width digits", file([]byte("１１１１２２２２")), "", "", "a non-ASCII character at character 1"},
		{"fail Latin-1 byte", file([]byte("1111\xe92222")), "", "", "not UTF-8"},
		{"fail PowerShell 5 echo: UTF-16 with byte order mark", file(utf16(true, "11112222\r\n")), "", "", "UTF-16"},
		{"fail UTF-16 without byte order mark", file(utf16(false, "11112222")), "", "", "NUL bytes"},
		{"fail empty file", file(nil), "", "", "empty"},
		{"fail only a line ending", file([]byte("\r\n")), "", "", "empty"},
		{"fail env with a space", "", "TEST_SIGNER_PIN_SPACE", "", "a space"},
		{"fail missing file", filepath.Join(dir, "nope"), "", "", "read PIN file"},
		{"fail unset env", "", "TEST_SIGNER_PIN_UNSET", "", "not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := signer.LoadPIN(tc.path, tc.env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				for _, pin := range []string{"1111", "2222", "3333", "4444"} {
					if strings.Contains(err.Error(), pin) {
						t.Errorf("the error holds the PIN: %v", err)
					}
				}
				if !p.Empty() {
					t.Error("a PIN came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if p.Reveal() != tc.want {
				t.Errorf("wrong PIN loaded (%d characters)", len(p.Reveal()))
			}
		})
	}
}
