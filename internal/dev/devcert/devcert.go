// Package devcert makes signing keys and self-signed certificates for
// development, tests and the local stack: SM2 (like current E-Port cards and
// cipher machines) or RSA-1024 (like older cards). They are never for
// production, where the key lives on the card.
package devcert

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179/internal/signature"
)

// Algorithm is the key type of a development key.
type Algorithm string

// The key types a card or cipher machine may have.
const (
	SM2 Algorithm = "sm2"
	RSA Algorithm = "rsa"
)

// Pair is a private key with its self-signed certificate.
type Pair struct {
	// Key is the private key.
	Key crypto.Signer
	// Cert is the certificate.
	Cert *smx509.Certificate
	// KeyPEM is the key as PKCS#8 PEM.
	KeyPEM []byte
	// CertPEM is the certificate as PEM.
	CertPEM []byte
}

// CertNo returns the certNo of the pair's certificate.
func (p *Pair) CertNo() string { return signature.CertNo(p.Cert) }

// Generate makes a key of type alg and a certificate for it, valid for ten
// years, with commonName as subject.
func Generate(alg Algorithm, commonName string) (*Pair, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case SM2:
		key, err = sm2.GenerateKey(rand.Reader)
	case RSA:
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		return nil, fmt.Errorf("devcert: unknown key type %q (want sm2 or rsa)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("devcert: generate %s key: %w", alg, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("devcert: serial: %w", err)
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, new(big.Int).Lsh(big.NewInt(1), 56)), // 8 bytes, like card serials
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"ceb179 development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	if alg == RSA {
		tpl.SignatureAlgorithm = x509.SHA256WithRSA
	}
	der, err := smx509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("devcert: certificate: %w", err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devcert: parse certificate: %w", err)
	}
	keyDER, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devcert: encode key: %w", err)
	}
	return &Pair{
		Key:     key,
		Cert:    cert,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// Load reads a key and certificate from PEM files and checks that they
// belong together.
func Load(keyFile, certFile string) (*Pair, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	key, err := signature.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("devcert: %s: %w", keyFile, err)
	}
	cert, err := signature.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("devcert: %s: %w", certFile, err)
	}
	if err := signature.MatchesKey(cert, key); err != nil {
		return nil, fmt.Errorf("devcert: %s and %s: %w", keyFile, certFile, err)
	}
	return &Pair{Key: key, Cert: cert, KeyPEM: keyPEM, CertPEM: certPEM}, nil
}

// LoadOrCreate loads dir/dev-signer.key and dir/dev-signer.crt, making an
// SM2 pair there first when neither exists. The key file is readable by its
// owner only.
func LoadOrCreate(dir, commonName string) (*Pair, bool, error) {
	keyFile, certFile := filepath.Join(dir, "dev-signer.key"), filepath.Join(dir, "dev-signer.crt")
	_, kerr := os.Stat(keyFile)
	_, cerr := os.Stat(certFile)
	if kerr == nil && cerr == nil {
		p, err := Load(keyFile, certFile)
		return p, false, err
	}
	if !errors.Is(kerr, os.ErrNotExist) || !errors.Is(cerr, os.ErrNotExist) {
		return nil, false, fmt.Errorf("devcert: %s and %s must both exist or both be absent", keyFile, certFile)
	}
	p, err := Generate(SM2, commonName)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("devcert: %w", err)
	}
	if err := os.WriteFile(keyFile, p.KeyPEM, 0o600); err != nil {
		return nil, false, fmt.Errorf("devcert: %w", err)
	}
	if err := os.WriteFile(certFile, p.CertPEM, 0o644); err != nil {
		return nil, false, fmt.Errorf("devcert: %w", err)
	}
	return p, true, nil
}
