package signer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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

func TestLoadPIN(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte("11112222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_SIGNER_PIN", "33334444")
	for _, tc := range []struct {
		name, path, env, want string
		wantErr               bool
	}{
		{"ok file", file, "", "11112222", false},
		{"ok env", "", "TEST_SIGNER_PIN", "33334444", false},
		{"ok none", "", "", "", false},
		{"fail missing file", filepath.Join(dir, "nope"), "", "", true},
		{"fail unset env", "", "TEST_SIGNER_PIN_UNSET", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := signer.LoadPIN(tc.path, tc.env)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if p.Reveal() != tc.want {
				t.Errorf("wrong PIN loaded")
			}
		})
	}
}
