package signer_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/sdftest"
)

// sdfConfig is the configuration of a signer on dev's SM2 key (or RSA
// key), with a private guard over a temporary state directory.
func sdfConfig(t *testing.T, dev *sdftest.Device, rsaKey bool, password string) signer.SDFConfig {
	t.Helper()
	cfg := signer.SDFConfig{
		Library: dev.Library, KeyIndex: sdftest.SM2Index, CertFile: dev.SM2Cert,
		PIN: signer.NewPIN(password), Sessions: 3, CallTimeout: 2 * time.Second,
		Guard: newGuard(t, filepath.Join(t.TempDir(), "pin-refused")), Name: "sdf-1",
	}
	if rsaKey {
		cfg.KeyIndex, cfg.CertFile = sdftest.RSAIndex, dev.RSACert
	}
	return cfg
}

// openSDF opens cfg and closes it when the test ends.
func openSDF(t *testing.T, cfg signer.SDFConfig) *signer.SDF {
	t.Helper()
	s, err := signer.OpenSDF(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenSDF: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSDFSign signs with the soft cipher machine's SM2 and RSA keys from
// several goroutines at once (more than there are sessions) and has
// OpenSSL verify every signature against the certificate. Each session
// got the access right once, with the right password.
func TestSDFSign(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rsa   bool
		field int
	}{
		{"ok SM2, GM/T 0018-2012 64-byte fields", false, 64},
		{"ok SM2, 32-byte fields", false, 32},
		{"ok RSA-1024", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := sdftest.New(t, 0x0300000000000cde, 0x01691f7f, sdftest.Options{FieldSize: tc.field})
			cfg := sdfConfig(t, dev, tc.rsa, sdftest.Password)
			cfg.ECCFieldSize = tc.field
			s := openSDF(t, cfg)
			certPEM, certNo := dev.SM2.CertPEM, "0300000000000cde"
			if tc.rsa {
				certPEM, certNo = dev.RSA.CertPEM, "01691f7f"
			}
			if s.CertNo() != certNo || s.Concurrency() != 3 {
				t.Fatalf("certNo %s concurrency %d", s.CertNo(), s.Concurrency())
			}
			var wg sync.WaitGroup
			sigs := make([]string, 8)
			errs := make([]error, 8)
			for i := range sigs {
				wg.Go(func() {
					sigs[i], errs[i] = s.Sign(context.Background(), fmt.Appendf(source[:len(source):len(source)], "#%d", i))
				})
			}
			wg.Wait()
			for i, v := range sigs {
				if errs[i] != nil {
					t.Fatalf("sign %d: %v", i, errs[i])
				}
				sdftest.VerifyWithOpenSSL(t, certPEM, fmt.Appendf(source[:len(source):len(source)], "#%d", i), v)
			}
			if calls, wrong := dev.Counts(t); calls != 3 || wrong != 0 {
				t.Errorf("the device saw %d access-right calls, %d wrong; want 3 (one a session), 0", calls, wrong)
			}
		})
	}
}

// TestSDFWrongPassword opens the signer with a wrong password: the device
// sees it exactly once, the error is a refused PIN, and a reopen (a
// restart: a new guard over the same state directory) sends nothing. A
// wrong password answered with a code no header names is refused too.
func TestSDFWrongPassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		code uint32
	}{
		{"fail SDR_PRKRERR", sdftest.SDRPrkRErr},
		{"fail unknown vendor code", sdftest.GmSSLErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := sdftest.New(t, 0x0a01, 0x0a02, sdftest.Options{WrongCode: tc.code})
			cfg := sdfConfig(t, dev, false, "87654321")
			_, err := signer.OpenSDF(context.Background(), cfg)
			if !errors.Is(err, signer.ErrPINRefused) {
				t.Fatalf("err = %v, want ErrPINRefused", err)
			}
			if strings.Contains(err.Error(), "87654321") {
				t.Fatalf("the error holds the password: %v", err)
			}
			cfg.Guard = newGuard(t, cfg.Guard.Dir())
			_, err = signer.OpenSDF(context.Background(), cfg)
			var blocked *signer.PINBlockedError
			if !errors.As(err, &blocked) {
				t.Fatalf("reopen: err = %v, want a PINBlockedError", err)
			}
			if calls, wrong := dev.Counts(t); calls != 1 || wrong != 1 {
				t.Fatalf("the device saw %d access-right calls, %d wrong; want 1, 1", calls, wrong)
			}
		})
	}
}

// TestSDFAccessRightFailures makes the access-right call fail after the
// device checked the (right) password: whatever the failure, it counts as
// a refused password, because the device may have counted it. Reopening
// (a restart: a new guard over the same state directory) sends nothing.
func TestSDFAccessRightFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		code uint32 // 0: hang
	}{
		{"fail SDR_COMMFAIL", sdftest.SDRCommFail},
		{"fail SDR_HARDFAIL", sdftest.SDRHardFail},
		{"fail SDR_KEYNOTEXIST", sdftest.SDRKeyNotExist},
		{"fail unknown code", 0x0100ff00},
		{"fail no answer", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := sdftest.New(t, 0x0b01, 0x0b02, sdftest.Options{})
			cfg := sdfConfig(t, dev, false, sdftest.Password)
			cfg.CallTimeout = 300 * time.Millisecond
			if tc.code == 0 {
				dev.Hang(t, "SDF_GetPrivateKeyAccessRight")
			} else {
				dev.Fail(t, "SDF_GetPrivateKeyAccessRight", tc.code, 1)
			}
			start := time.Now()
			_, err := signer.OpenSDF(context.Background(), cfg)
			if !errors.Is(err, signer.ErrPINRefused) {
				t.Fatalf("err = %v, want ErrPINRefused", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("OpenSDF took %s with a 300ms call timeout", d)
			}
			dev.Release(t)
			cfg.Guard = newGuard(t, cfg.Guard.Dir())
			if _, err := signer.OpenSDF(context.Background(), cfg); !errors.Is(err, signer.ErrPINRefused) {
				t.Fatalf("reopen: err = %v, want ErrPINRefused", err)
			}
			if calls, _ := dev.Counts(t); calls != 1 {
				t.Fatalf("the device saw %d access-right calls, want 1", calls)
			}
		})
	}
}

// TestSDFNoPasswordBeforeCheck fails the opening before the password
// could go: the key at the index is not the certificate's, the library
// writes ECC values in other fields than configured, the device or the
// session cannot be opened, the key export hangs, the context ended.
// The device sees no access-right call, and the error says what to fix.
func TestSDFNoPasswordBeforeCheck(t *testing.T) {
	other := sdftest.New(t, 0x0c03, 0x0c04, sdftest.Options{})
	for _, tc := range []struct {
		name  string
		field int // the device's ECC field size
		setup func(*sdftest.Device, *signer.SDFConfig)
		kind  error
		want  string
	}{
		{"fail another key's certificate", 64, func(_ *sdftest.Device, c *signer.SDFConfig) { c.CertFile = other.SM2Cert }, signer.ErrDevice, "is not the key of certificate"},
		{"fail RSA certificate of another key", 64, func(_ *sdftest.Device, c *signer.SDFConfig) {
			c.KeyIndex, c.CertFile = sdftest.RSAIndex, other.RSACert
		}, signer.ErrDevice, "is not the key of certificate"},
		{"fail no key at the index", 64, func(_ *sdftest.Device, c *signer.SDFConfig) { c.KeyIndex = 7 }, signer.ErrDevice, "SDR_KEYNOTEXIST"},
		{"fail 32-byte fields configured as 64", 32, func(*sdftest.Device, *signer.SDFConfig) {}, signer.ErrDevice, "eccSignatureLayout: 32"},
		{"fail 64-byte fields configured as 32", 64, func(_ *sdftest.Device, c *signer.SDFConfig) { c.ECCFieldSize = 32 }, signer.ErrDevice, "eccSignatureLayout: 64"},
		{"fail no library", 64, func(_ *sdftest.Device, c *signer.SDFConfig) { c.Library += ".missing" }, signer.ErrUnavailable, "load SDF library"},
		{"fail device cannot open", 64, func(d *sdftest.Device, _ *signer.SDFConfig) {
			d.Fail(t, "SDF_OpenDevice", sdftest.SDRHardFail, 0)
		}, signer.ErrUnavailable, "SDF_OpenDevice"},
		{"fail session cannot open", 64, func(d *sdftest.Device, _ *signer.SDFConfig) {
			d.Fail(t, "SDF_OpenSession", sdftest.SDRCommFail, 0)
		}, signer.ErrUnavailable, "SDF_OpenSession"},
		{"fail key export hangs", 64, func(d *sdftest.Device, _ *signer.SDFConfig) {
			d.Hang(t, "SDF_ExportSignPublicKey_ECC")
		}, signer.ErrUnavailable, "no answer in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := sdftest.New(t, 0x0c01, 0x0c02, sdftest.Options{FieldSize: tc.field})
			cfg := sdfConfig(t, dev, false, sdftest.Password)
			cfg.CallTimeout = 300 * time.Millisecond
			tc.setup(dev, &cfg)
			_, err := signer.OpenSDF(context.Background(), cfg)
			if !errors.Is(err, tc.kind) || errors.Is(err, signer.ErrPINRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.kind, tc.want)
			}
			dev.Release(t)
			if calls, _ := dev.Counts(t); calls != 0 {
				t.Fatalf("the device saw %d access-right calls, want 0", calls)
			}
		})
	}
	t.Run("fail context ended", func(t *testing.T) {
		dev := sdftest.New(t, 0x0c05, 0x0c06, sdftest.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := signer.OpenSDF(ctx, sdfConfig(t, dev, false, sdftest.Password))
		if !errors.Is(err, signer.ErrUnavailable) || errors.Is(err, signer.ErrPINRefused) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if calls, _ := dev.Counts(t); calls != 0 {
			t.Fatalf("the device saw %d access-right calls, want 0", calls)
		}
	})
}

// TestSDFSessionRecovery breaks sessions while signing. A device error
// kills the session (the soft device answers SDR_OPENSESSION on it from
// then on); the signer replaces it with a new session, which gets the
// access right again, and the signature still comes. A second failure in
// a row is returned; a call error is returned at once, not retried; a
// hung call is abandoned within its context's bound or the call timeout.
// In every case the failed session is never used again: the next
// signature opens a new session.
func TestSDFSessionRecovery(t *testing.T) {
	const inArgErr = 0x0100001D // SDR_INARGERR: the call was wrong, not the device
	for _, tc := range []struct {
		name        string
		rsa         bool
		fault       func(d *sdftest.Device, fn string)
		callTimeout time.Duration
		ctxTimeout  time.Duration
		want        error // nil: the first signature comes anyway
		text        string
		calls       int // access-right calls after a second signature
	}{
		{"ok one device error: a new session signs", false,
			func(d *sdftest.Device, fn string) { d.Fail(t, fn, sdftest.SDRCommFail, 1) }, 0, 0, nil, "", 2},
		{"fail two device errors in a row", true,
			func(d *sdftest.Device, fn string) { d.Fail(t, fn, sdftest.SDRHardFail, 2) }, 0, 0, signer.ErrUnavailable, "SDR_HARDFAIL", 3},
		{"fail call error is not retried", false,
			func(d *sdftest.Device, fn string) { d.Fail(t, fn, inArgErr, 1) }, 0, 0, signer.ErrDevice, "SDR_INARGERR", 2},
		{"fail hung call abandoned at the context's bound", false,
			func(d *sdftest.Device, fn string) { d.Hang(t, fn) }, time.Minute, 300 * time.Millisecond, signer.ErrUnavailable, "no answer in time", 2},
		{"fail hung call abandoned at the call timeout", true,
			func(d *sdftest.Device, fn string) { d.Hang(t, fn) }, 300 * time.Millisecond, 0, signer.ErrUnavailable, "no answer in time", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := sdftest.New(t, 0x0d01, 0x0d02, sdftest.Options{})
			cfg := sdfConfig(t, dev, tc.rsa, sdftest.Password)
			cfg.Sessions = 1
			if tc.callTimeout > 0 {
				cfg.CallTimeout = tc.callTimeout
			}
			s := openSDF(t, cfg)
			fn := "SDF_InternalSign_ECC"
			if tc.rsa {
				fn = "SDF_InternalPrivateKeyOperation_RSA"
			}
			tc.fault(dev, fn)
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			start := time.Now()
			_, err := s.Sign(ctx, source)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Sign returned after %s; its bound was 300ms", d)
			}
			if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text)) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.want, tc.text)
			}
			dev.Release(t)
			if _, err := s.Sign(context.Background(), source); err != nil {
				t.Fatalf("after the device recovered: %v", err)
			}
			if calls, _ := dev.Counts(t); calls != tc.calls {
				t.Fatalf("%d access-right calls, want %d: a failed session is replaced, never used again", calls, tc.calls)
			}
		})
	}
}

// TestSDFClose closes the signer: it signs no more, and the device can be
// opened again (the soft device refuses a second SDF_OpenDevice, so this
// also shows the device was closed).
func TestSDFClose(t *testing.T) {
	dev := sdftest.New(t, 0x0e01, 0x0e02, sdftest.Options{})
	cfg := sdfConfig(t, dev, false, sdftest.Password)
	s, err := signer.OpenSDF(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Sign(context.Background(), source); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("Sign after Close: %v", err)
	}
	s2 := openSDF(t, cfg)
	if _, err := s2.Sign(context.Background(), source); err != nil {
		t.Fatal(err)
	}
}

// TestSDFBadSignature has the device return signatures with a bit
// flipped: the signer verifies every signature against the certificate
// and returns none that does not verify.
func TestSDFBadSignature(t *testing.T) {
	for _, tc := range []struct {
		name string
		rsa  bool
		fn   string
	}{
		{"fail SM2", false, "SDF_InternalSign_ECC"},
		{"fail RSA", true, "SDF_InternalPrivateKeyOperation_RSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := sdftest.New(t, 0x0e03, 0x0e04, sdftest.Options{})
			s := openSDF(t, sdfConfig(t, dev, tc.rsa, sdftest.Password))
			dev.Corrupt(t, tc.fn, 1)
			v, err := s.Sign(context.Background(), source)
			if !errors.Is(err, signer.ErrDevice) || !strings.Contains(err.Error(), "does not verify") || v != "" {
				t.Fatalf("Sign = %q, %v; want no signature and ErrDevice", v, err)
			}
			if _, err := s.Sign(context.Background(), source); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSDFCloseWhileHung closes a signer whose call hangs in the library:
// the device is not closed under the call (the soft device logs it if it
// is), and a new signer on the library still works, before and after the
// hung call returns.
func TestSDFCloseWhileHung(t *testing.T) {
	dev := sdftest.New(t, 0x0e05, 0x0e06, sdftest.Options{})
	cfg := sdfConfig(t, dev, false, sdftest.Password)
	cfg.Sessions, cfg.CallTimeout = 1, 200*time.Millisecond
	s, err := signer.OpenSDF(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev.Hang(t, "SDF_InternalSign_ECC")
	if _, err := s.Sign(context.Background(), source); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	s.Close()
	if dev.ClosedUnderCall(t) {
		t.Fatal("the device was closed while a call was inside the library")
	}
	dev.Release(t)
	s2 := openSDF(t, cfg)
	if _, err := s2.Sign(context.Background(), source); err != nil {
		t.Fatal(err)
	}
}

// TestSDFPasswordAnswerAwaited delays the device's answer to the access
// password past the caller's deadline, within the call timeout: the
// answer on its way is waited for, and the right password is accepted,
// not turned into a strike.
func TestSDFPasswordAnswerAwaited(t *testing.T) {
	dev := sdftest.New(t, 0x0e07, 0x0e08, sdftest.Options{})
	cfg := sdfConfig(t, dev, false, sdftest.Password)
	cfg.Sessions, cfg.CallTimeout = 1, 10*time.Second
	dev.Hang(t, "SDF_GetPrivateKeyAccessRight")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	type opened struct {
		s   *signer.SDF
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := signer.OpenSDF(ctx, cfg)
		ch <- opened{s, err}
	}()
	time.Sleep(time.Second) // the caller's deadline passes; the answer is held
	dev.Release(t)
	o := <-ch
	if o.err != nil {
		t.Fatalf("OpenSDF: %v", o.err)
	}
	s := o.s
	defer s.Close()
	if _, err := s.Sign(context.Background(), source); err != nil {
		t.Fatal(err)
	}
	if calls, wrong := dev.Counts(t); calls != 1 || wrong != 0 {
		t.Fatalf("the device saw %d access-right calls, %d wrong; want 1, 0", calls, wrong)
	}
}
