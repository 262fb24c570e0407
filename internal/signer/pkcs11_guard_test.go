//go:build cgo

package signer

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/miekg/pkcs11"
)

// fakeP11 is a PKCS#11 module whose login answers loginErr. It counts the
// logins, which carry the PIN, where they happen.
type fakeP11 struct {
	mu       sync.Mutex
	loginErr error
	logins   int
}

func (f *fakeP11) Initialize(...pkcs11.InitializeOption) error { return nil }
func (f *fakeP11) Finalize() error                             { return nil }
func (f *fakeP11) Destroy()                                    {}
func (f *fakeP11) GetSlotList(bool) ([]uint, error)            { return []uint{1}, nil }
func (f *fakeP11) GetTokenInfo(uint) (pkcs11.TokenInfo, error) {
	return pkcs11.TokenInfo{Label: "ceb179"}, nil
}
func (f *fakeP11) OpenSession(uint, uint) (pkcs11.SessionHandle, error) { return 1, nil }
func (f *fakeP11) CloseSession(pkcs11.SessionHandle) error              { return nil }
func (f *fakeP11) Login(_ pkcs11.SessionHandle, _ uint, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	return f.loginErr
}
func (f *fakeP11) Logout(pkcs11.SessionHandle) error                               { return nil }
func (f *fakeP11) FindObjectsInit(pkcs11.SessionHandle, []*pkcs11.Attribute) error { return nil }
func (f *fakeP11) FindObjects(pkcs11.SessionHandle, int) ([]pkcs11.ObjectHandle, bool, error) {
	return []pkcs11.ObjectHandle{7}, false, nil
}
func (f *fakeP11) FindObjectsFinal(pkcs11.SessionHandle) error { return nil }
func (f *fakeP11) GetAttributeValue(pkcs11.SessionHandle, pkcs11.ObjectHandle, []*pkcs11.Attribute) ([]*pkcs11.Attribute, error) {
	return nil, errors.New("not used")
}
func (f *fakeP11) SignInit(pkcs11.SessionHandle, []*pkcs11.Mechanism, pkcs11.ObjectHandle) error {
	return nil
}
func (f *fakeP11) Sign(pkcs11.SessionHandle, []byte) ([]byte, error) {
	return nil, errors.New("not used")
}

// TestPKCS11LoginGuarded refuses the login in PKCS#11's words and in an
// unknown one: one login reaches the token, and a reopen (the bridge's
// next probe, or a restart on the same state directory) sends no PIN.
// Device errors are not refusals.
func TestPKCS11LoginGuarded(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x0b0c)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, key.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	slot := uint(1)
	for _, tc := range []struct {
		name    string
		err     error
		refused bool
	}{
		{"ok CKR_PIN_INCORRECT", pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), true},
		{"ok CKR_PIN_LOCKED", pkcs11.Error(pkcs11.CKR_PIN_LOCKED), true},
		{"ok CKR_PIN_EXPIRED", pkcs11.Error(pkcs11.CKR_PIN_EXPIRED), true},
		{"ok unknown vendor code", pkcs11.Error(0x80000042), true},
		{"ok CKR_FUNCTION_FAILED", pkcs11.Error(pkcs11.CKR_FUNCTION_FAILED), true},
		{"ok device removed is not a refusal", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED), false},
		{"ok token not present is not a refusal", pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeP11{loginErr: tc.err}
			dir := t.TempDir()
			cfg := PKCS11Config{Module: "fake", Slot: &slot, KeyLabel: "card", CertFile: certFile, PIN: NewPIN("1234"), Concurrency: 1,
				Guard: NewPINGuard(dir), Name: "hsm"}
			_, _, err := openToken(api, cfg)
			if got := errors.Is(err, ErrPINRefused); got != tc.refused {
				t.Fatalf("openToken = %v, refused %v, want %v", err, got, tc.refused)
			}
			// The bridge probes again, and a restart builds a new guard on
			// the same directory.
			_, _, err2 := openToken(api, cfg)
			cfg.Guard = NewPINGuard(dir)
			_, _, err3 := openToken(api, cfg)
			want := 3
			if tc.refused {
				want = 1
				if !errors.Is(err2, ErrPINRefused) || !errors.Is(err3, ErrPINRefused) {
					t.Errorf("reopen = %v, %v; want the standing refusal", err2, err3)
				}
			}
			if api.logins != want {
				t.Errorf("%d logins reached the token, want %d", api.logins, want)
			}
			// A changed PIN is tried.
			api.loginErr = nil
			cfg.PIN = NewPIN("5678")
			if _, _, err := openToken(api, cfg); err != nil {
				t.Errorf("login with a changed PIN: %v", err)
			}
		})
	}
}
