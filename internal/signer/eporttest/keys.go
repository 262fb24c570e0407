package eporttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// Key is a test key with a self-signed certificate, in memory and as PEM.
type Key struct {
	// Signer is the private key.
	Signer crypto.Signer
	// Cert is its self-signed certificate.
	Cert *smx509.Certificate
	// KeyPEM is the key as PKCS#8 PEM.
	KeyPEM []byte
	// CertPEM is the certificate as PEM.
	CertPEM []byte
}

// NewSM2Key returns a fresh SM2 key and certificate with the given serial
// (which becomes the certNo).
func NewSM2Key(tb testing.TB, serial int64) Key {
	tb.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return selfSigned(tb, k, serial)
}

// NewRSAKey returns a fresh RSA-1024 key (as on older cards) and
// certificate with the given serial.
func NewRSAKey(tb testing.TB, serial int64) Key {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	return selfSigned(tb, k, serial)
}

func selfSigned(tb testing.TB, k crypto.Signer, serial int64) Key {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "ceb179 test card"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	p8, err := smx509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return Key{
		Signer:  k,
		Cert:    cert,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}
