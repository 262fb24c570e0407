//go:build cgo

package signer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/miekg/pkcs11"
)

// fakeP11 is a PKCS#11 module whose login answers loginErr, or hangs
// until release is closed when hang is set. It counts the logins, which
// carry the PIN, where they happen: as they enter.
type fakeP11 struct {
	mu       sync.Mutex
	loginErr error
	hang     bool
	release  chan struct{}
	logins   int
	serial   string
}

func (f *fakeP11) Initialize(...pkcs11.InitializeOption) error { return nil }
func (f *fakeP11) Finalize() error                             { return nil }
func (f *fakeP11) Destroy()                                    {}
func (f *fakeP11) GetSlotList(bool) ([]uint, error)            { return []uint{1}, nil }
func (f *fakeP11) GetTokenInfo(uint) (pkcs11.TokenInfo, error) {
	return pkcs11.TokenInfo{Label: "ceb179", SerialNumber: f.serial}, nil
}
func (f *fakeP11) OpenSession(uint, uint) (pkcs11.SessionHandle, error) { return 1, nil }
func (f *fakeP11) CloseSession(pkcs11.SessionHandle) error              { return nil }
func (f *fakeP11) Login(_ pkcs11.SessionHandle, _ uint, _ string) error {
	f.mu.Lock()
	f.logins++
	hang, err := f.hang, f.loginErr
	f.mu.Unlock()
	if hang {
		<-f.release
	}
	return err
}
func (f *fakeP11) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
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

// p11Config is a configuration of key label on the fake token, its PIN
// through a guard on dir.
func p11Config(t *testing.T, dir, label, pin string) PKCS11Config {
	t.Helper()
	key := eporttest.NewRSAKey(t, 0x0b0c)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, key.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := NewPINGuard(dir)
	if err != nil {
		t.Fatal(err)
	}
	slot := uint(1)
	return PKCS11Config{Module: "fake", Slot: &slot, KeyLabel: label, CertFile: certFile, PIN: NewPIN(pin),
		Concurrency: 1, CallTimeout: 300 * time.Millisecond, Guard: g, Name: "hsm-" + label}.withDefaults()
}

func openFake(ctx context.Context, api p11API, cfg PKCS11Config) error {
	var inflight sync.WaitGroup
	k, _, err := openToken(ctx, api, cfg, &inflight)
	go func() { inflight.Wait(); k.closeSessions() }()
	return err
}

// TestPKCS11LoginGuarded refuses the login in PKCS#11's words, in a code
// that is no known device error, and in known device errors: a refusal or
// a strike lets one login reach the token, and a reopen (the bridge's next
// probe, or a restart on the same state directory) sends no PIN; a known
// device error leaves the PIN unchecked, so each reopen tries it once.
func TestPKCS11LoginGuarded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		want   error // kind of the open's error
		logins int   // after three opens
	}{
		{"ok CKR_PIN_INCORRECT is refused", pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), ErrPINRefused, 1},
		{"ok CKR_PIN_LOCKED is refused", pkcs11.Error(pkcs11.CKR_PIN_LOCKED), ErrPINRefused, 1},
		{"ok CKR_PIN_EXPIRED is refused", pkcs11.Error(pkcs11.CKR_PIN_EXPIRED), ErrPINRefused, 1},
		{"ok unknown vendor code is a strike", pkcs11.Error(0x80000042), ErrPINStruck, 1},
		{"ok CKR_FUNCTION_FAILED is a strike", pkcs11.Error(pkcs11.CKR_FUNCTION_FAILED), ErrPINStruck, 1},
		{"ok CKR_GENERAL_ERROR is a strike", pkcs11.Error(pkcs11.CKR_GENERAL_ERROR), ErrPINStruck, 1},
		{"ok an error that is no PKCS#11 code is a strike", errors.New("vendor library: bad thing"), ErrPINStruck, 1},
		{"ok device removed is not a refusal", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED), ErrUnavailable, 3},
		{"ok token not present is not a refusal", pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), ErrUnavailable, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeP11{loginErr: tc.err, serial: "0001"}
			dir := t.TempDir()
			cfg := p11Config(t, dir, "card", "1234")
			err := openFake(t.Context(), api, cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("open = %v, want %v", err, tc.want)
			}
			blocked := errors.Is(tc.want, ErrPINRefused)
			if blocked != errors.Is(err, ErrPINRefused) {
				t.Fatalf("open = %v: refused %v, want %v", err, !blocked, blocked)
			}
			// The bridge probes again, and a restart builds a new guard on
			// the same directory.
			err2 := openFake(t.Context(), api, cfg)
			cfg.Guard, _ = NewPINGuard(dir)
			err3 := openFake(t.Context(), api, cfg)
			if blocked {
				var be *PINBlockedError
				if !errors.As(err2, &be) || !errors.As(err3, &be) {
					t.Errorf("reopen = %v, %v; want the standing block", err2, err3)
				}
			}
			if got := api.count(); got != tc.logins {
				t.Errorf("%d logins reached the token, want %d", got, tc.logins)
			}
			// A changed PIN is tried.
			api.mu.Lock()
			api.loginErr = nil
			api.mu.Unlock()
			cfg.PIN = NewPIN("5678")
			if err := openFake(t.Context(), api, cfg); err != nil {
				t.Errorf("login with a changed PIN: %v", err)
			}
		})
	}
}

// TestPKCS11TwoKeysOneToken configures two keys on one token, each with
// its own certificate: the user PIN belongs to the token, so a PIN refused
// at the first key's login is not sent for the second key.
func TestPKCS11TwoKeysOneToken(t *testing.T) {
	api := &fakeP11{loginErr: pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), serial: "77"}
	dir := t.TempDir()
	a, b := p11Config(t, dir, "key-a", "1234"), p11Config(t, dir, "key-b", "1234")
	if err := openFake(t.Context(), api, a); !errors.Is(err, ErrPINRefused) {
		t.Fatalf("first key: %v, want refused", err)
	}
	var be *PINBlockedError
	if err := openFake(t.Context(), api, b); !errors.As(err, &be) {
		t.Fatalf("second key on the token: %v, want the block", err)
	}
	if got := api.count(); got != 1 {
		t.Errorf("%d logins reached the token, want 1", got)
	}
	rs, err := a.Guard.Refusals()
	if err != nil || len(rs) != 1 {
		t.Fatalf("markers %+v, %v; want one for the token", rs, err)
	}
	// Another token (another serial) behind the same module is another
	// card.
	other := &fakeP11{serial: "78"}
	if err := openFake(t.Context(), other, b); err != nil {
		t.Errorf("another token: %v", err)
	}
}

// TestPKCS11LoginHangs has the module's login hang: the open returns at
// the call timeout with a strike, even when the caller stops meanwhile (a
// service stop waits for the answer at most the call timeout, so that an
// answer on its way is not thrown away), and no second login is made.
func TestPKCS11LoginHangs(t *testing.T) {
	api := &fakeP11{hang: true, release: make(chan struct{}), serial: "0002"}
	defer close(api.release)
	dir := t.TempDir()
	cfg := p11Config(t, dir, "card", "1234")
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- openFake(ctx, api, cfg) }()
	for api.count() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPINStruck) {
			t.Fatalf("open = %v, want a strike", err)
		}
	case <-time.After(10 * cfg.CallTimeout):
		t.Fatalf("open still running %s after the stop; the call timeout is %s", 10*cfg.CallTimeout, cfg.CallTimeout)
	}
	if err := openFake(t.Context(), api, cfg); !errors.Is(err, ErrPINStruck) {
		t.Errorf("reopen = %v, want the strike", err)
	}
	if got := api.count(); got != 1 {
		t.Errorf("%d logins reached the token, want 1", got)
	}
}
