//go:build softhsm2 && cgo

package signer_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// softHSM creates a SoftHSM2 token in a temporary directory and imports a
// fresh RSA-1024 key (labelled "card", id 01) into it. It returns the
// module path and the key. SOFTHSM2_MODULE names the module (the Makefile
// sets it); softhsm2-util must be on PATH.
func softHSM(t *testing.T) (string, eporttest.Key) {
	t.Helper()
	module := os.Getenv("SOFTHSM2_MODULE")
	if module == "" {
		module = "/usr/lib/softhsm/libsofthsm2.so"
	}
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("SoftHSM2 module: %v (install softhsm2 or set SOFTHSM2_MODULE)", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	key := eporttest.NewRSAKey(t, 0x01691f7f)
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, key.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command("softhsm2-util", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("softhsm2-util %s: %v\n%s", args[0], err, out)
		}
	}
	run("--init-token", "--free", "--label", "ceb179", "--pin", "1234", "--so-pin", "5678")
	run("--import", keyFile, "--token", "ceb179", "--label", "card", "--id", "01", "--pin", "1234")
	return module, key
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
			s, err := signer.OpenPKCS11(cfg)
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
