package signer

import (
	"fmt"
	"os"

	"github.com/ceb179/ceb179/internal/signature"
)

// NewKeyFilePEM returns a Signer over a PEM private key (RSA or SM2) and
// the PEM certificate that goes with it. It is meant for development and
// tests: production keys stay on a card or in a cipher machine.
func NewKeyFilePEM(keyPEM, certPEM []byte) (*KeySigner, error) {
	key, err := signature.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	cert, err := signature.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("key file certificate: %w", err)
	}
	return NewKeySigner(key, cert, 1, nil)
}

// OpenKeyFile reads keyPath and certPath and returns NewKeyFilePEM of them.
func OpenKeyFile(keyPath, certPath string) (*KeySigner, error) {
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read certificate file: %w", err)
	}
	return NewKeyFilePEM(keyPEM, certPEM)
}
