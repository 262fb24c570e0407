package devcert

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/signature"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		name    string
		alg     Algorithm
		want    signature.Algorithm
		wantErr bool
	}{
		{"ok sm2", SM2, signature.SM2SM3, false},
		{"ok rsa", RSA, signature.RSASHA1, false},
		{"fail unknown type", Algorithm("dsa"), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Generate(tt.alg, "test")
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			alg, err := signature.AlgorithmOf(p.Cert.PublicKey)
			if err != nil || alg != tt.want {
				t.Fatalf("algorithm = %v, %v; want %v", alg, err, tt.want)
			}
			if len(p.CertNo()) != 16 {
				t.Errorf("certNo %q: want 8 bytes of hex, like a card's", p.CertNo())
			}
			sig, err := signature.Sign(p.Key, []byte("source"))
			if err != nil {
				t.Fatal(err)
			}
			if err := signature.Verify(p.Cert, []byte("source"), sig); err != nil {
				t.Fatalf("own signature does not verify: %v", err)
			}
			// The PEM forms are what operators and OpenSSL read.
			key, err := signature.ParsePrivateKeyPEM(p.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := signature.ParseCertificatePEM(p.CertPEM)
			if err != nil {
				t.Fatal(err)
			}
			if err := signature.MatchesKey(cert, key); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	p1, created, err := LoadOrCreate(dir, "dev")
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	info, err := os.Stat(filepath.Join(dir, "dev-signer.key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	p2, created, err := LoadOrCreate(dir, "dev")
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if p1.CertNo() != p2.CertNo() {
		t.Fatal("second call made a new pair instead of loading the first")
	}

	// Half a pair is an error, never silently replaced.
	if err := os.Remove(filepath.Join(dir, "dev-signer.crt")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir, "dev"); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("half a pair: err = %v", err)
	}
}

func TestLoadMismatch(t *testing.T) {
	dir := t.TempDir()
	a, _ := Generate(SM2, "a")
	b, _ := Generate(SM2, "b")
	keyFile, certFile := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	_ = os.WriteFile(keyFile, a.KeyPEM, 0o600)
	_ = os.WriteFile(certFile, b.CertPEM, 0o644)
	if _, err := Load(keyFile, certFile); err == nil {
		t.Fatal("fail mismatched key and certificate: want an error")
	}
}

// TestOpenSSLReadsPair checks that OpenSSL accepts what we write.
func TestOpenSSLReadsPair(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	p, _, err := LoadOrCreate(dir, "dev")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "x509", "-in", filepath.Join(dir, "dev-signer.crt"), "-noout", "-serial").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v: %s", err, out)
	}
	if got := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(string(out), "serial="))); got != p.CertNo() {
		t.Fatalf("openssl serial %s, certNo %s", got, p.CertNo())
	}
	if out, err := exec.Command("openssl", "pkey", "-in", filepath.Join(dir, "dev-signer.key"), "-noout").CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey: %v: %s", err, out)
	}
}
