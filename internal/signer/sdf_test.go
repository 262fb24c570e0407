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

	"github.com/ceb179/ceb179/internal/signature"
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
		Guard: signer.NewPINGuard(filepath.Join(t.TempDir(), "pin-refused")), Name: "sdf-1",
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
			cfg.Guard = signer.NewPINGuard(cfg.Guard.Dir())
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

var _ = signature.CertNo
