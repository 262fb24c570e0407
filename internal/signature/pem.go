package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// ErrEncryptedKey means a PEM private key is encrypted; decrypt it first
// (for example with `openssl pkey -in enc.pem -out key.pem`).
var ErrEncryptedKey = errors.New("signature: private key is encrypted")

// ParseCertificatePEM parses the first CERTIFICATE block of pemBytes as an
// X.509 certificate with an SM2 or RSA key (SM2-signed certificates
// included). For the E-Port control's output it also accepts the bare
// base64 of the DER certificate, and DER itself.
func ParseCertificatePEM(pemBytes []byte) (*smx509.Certificate, error) {
	der, err := certificateDER(pemBytes)
	if err != nil {
		return nil, err
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("signature: parse certificate: %w", err)
	}
	return cert, nil
}

// certificateDER finds the DER bytes of a certificate in PEM, bare base64 or
// DER input.
func certificateDER(b []byte) ([]byte, error) {
	rest := b
	var seen []string
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
		seen = append(seen, block.Type)
	}
	if len(seen) > 0 {
		return nil, fmt.Errorf("signature: no CERTIFICATE block in PEM (found %s)", strings.Join(seen, ", "))
	}
	trimmed := strings.TrimSpace(string(b))
	if trimmed == "" {
		return nil, errors.New("signature: empty certificate input")
	}
	if der, err := base64.StdEncoding.DecodeString(trimmed); err == nil && len(der) > 0 && der[0] == 0x30 {
		return der, nil
	}
	if b[0] == 0x30 {
		return b, nil
	}
	return nil, errors.New("signature: no PEM certificate found")
}

// ParsePrivateKeyPEM parses the first private key in pemBytes. It accepts
// PKCS#8 "PRIVATE KEY" (RSA or SM2, as `openssl genpkey` writes them),
// PKCS#1 "RSA PRIVATE KEY", and SEC 1 "EC PRIVATE KEY" / "SM2 PRIVATE KEY"
// on the SM2 curve; other blocks such as "EC PARAMETERS" are skipped. The
// result is an *sm2.PrivateKey or an *rsa.PrivateKey. Encrypted keys yield
// an error wrapping ErrEncryptedKey; keys of other types wrap
// ErrUnsupportedKey.
func ParsePrivateKeyPEM(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	var seen []string
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w (PKCS#8)", ErrEncryptedKey)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY":
			if block.Headers["Proc-Type"] == "4,ENCRYPTED" {
				return nil, fmt.Errorf("%w (%s with DEK-Info)", ErrEncryptedKey, block.Type)
			}
			return parsePrivateKeyBlock(block)
		}
		seen = append(seen, block.Type)
	}
	if len(seen) > 0 {
		return nil, fmt.Errorf("signature: no private key block in PEM (found %s)", strings.Join(seen, ", "))
	}
	return nil, errors.New("signature: no PEM private key found")
}

func parsePrivateKeyBlock(block *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = smx509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = smx509.ParsePKCS1PrivateKey(block.Bytes)
	default: // SEC 1
		key, err = smx509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("signature: parse %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *sm2.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if !sm2.IsSM2PublicKey(&k.PublicKey) {
			return nil, fmt.Errorf("%w: EC key on curve %s, want SM2", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		sk, err := new(sm2.PrivateKey).FromECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("signature: parse %s: %w", block.Type, err)
		}
		return sk, nil
	}
	return nil, fmt.Errorf("%w: %T in %s", ErrUnsupportedKey, key, block.Type)
}

// CertNo returns the certNo customs expects for cert: the serial number's
// bytes in lower-case hex, without leading zero bytes (serial
// 03000000000CDE6F gives "03000000000cde6f", 01691F7F gives "01691f7f").
func CertNo(cert *smx509.Certificate) string {
	if cert == nil || cert.SerialNumber == nil {
		return ""
	}
	return hex.EncodeToString(cert.SerialNumber.Bytes())
}
