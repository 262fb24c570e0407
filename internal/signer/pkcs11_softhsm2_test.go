//go:build softhsm2 && cgo

package signer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/ceb179/ceb179/internal/signer/softhsmtest"
)

// softHSM creates a SoftHSM2 token with a fresh RSA-1024 key; see
// softhsmtest.Token.
func softHSM(t *testing.T) (string, eporttest.Key) {
	t.Helper()
	return softhsmtest.Token(t)
}

func TestPKCS11SoftHSM(t *testing.T) {
	module, key := softHSM(t)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, key.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     signer.PKCS11Config
		wantErr error
	}{
		{"ok RSA by label", signer.PKCS11Config{TokenLabel: "ceb179", KeyLabel: "card", PIN: signer.NewPIN("1234")}, nil},
		{"ok RSA by id, two sessions", signer.PKCS11Config{TokenLabel: "ceb179", KeyID: "01", PIN: signer.NewPIN("1234"), Concurrency: 2}, nil},
		{"fail wrong PIN", signer.PKCS11Config{TokenLabel: "ceb179", KeyLabel: "card", PIN: signer.NewPIN("9999")}, signer.ErrPINRefused},
		{"fail no such token", signer.PKCS11Config{TokenLabel: "nope", KeyLabel: "card", PIN: signer.NewPIN("1234")}, signer.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Module, cfg.CertFile = module, certFile
			cfg.Guard, cfg.Name = newGuard(t, t.TempDir()), "hsm"
			s, err := signer.OpenPKCS11(context.Background(), cfg)
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
			if s.CertNo() != "01691f7f" {
				t.Errorf("certNo = %s", s.CertNo())
			}
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() {
					v, err := s.Sign(context.Background(), source)
					if err == nil {
						err = signature.Verify(key.Cert, source, v)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}
