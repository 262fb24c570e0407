package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// DefaultUID is the SM2 user id (distinguishing identifier) that customs
// expects: the GB/T 32918 default, used by E-Port cards and cipher machines.
const DefaultUID = "1234567812345678"

// SM2SignatureSize is the length in bytes of a raw SM2 signature r||s.
const SM2SignatureSize = 64

// Errors returned (wrapped) by this package; test for them with errors.Is.
var (
	// ErrUnsupportedKey means the key or certificate is neither SM2 nor RSA.
	ErrUnsupportedKey = errors.New("signature: unsupported key type")
	// ErrEncoding means the signValue is not valid standard base64.
	ErrEncoding = errors.New("signature: signValue is not valid base64")
	// ErrLength means the decoded signValue has the wrong length for the key.
	ErrLength = errors.New("signature: signValue has the wrong length")
	// ErrMismatch means the signature does not verify over the sign source.
	ErrMismatch = errors.New("signature: signature does not verify")
	// ErrKeyMismatch means a private key does not belong to a certificate.
	ErrKeyMismatch = errors.New("signature: private key does not match the certificate")
)

// Algorithm is a signature scheme used for customs 179 uploads.
type Algorithm int

const (
	// UnknownAlgorithm is the zero Algorithm: no supported scheme.
	UnknownAlgorithm Algorithm = iota
	// SM2SM3 is SM2 over SM3 with DefaultUID; signatures are raw r||s.
	SM2SM3
	// RSASHA1 is RSA PKCS#1 v1.5 over SHA-1.
	RSASHA1
)

// String returns the name of the algorithm, for messages.
func (a Algorithm) String() string {
	switch a {
	case SM2SM3:
		return "SM2-SM3"
	case RSASHA1:
		return "RSA-SHA1"
	default:
		return "unknown"
	}
}

// AlgorithmOf returns the algorithm that signatures under the public key pub
// use: SM2SM3 for an *ecdsa.PublicKey on the SM2 curve, RSASHA1 for an
// *rsa.PublicKey. Any other key yields an error wrapping ErrUnsupportedKey.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			break
		}
		if !sm2.IsSM2PublicKey(k) {
			return UnknownAlgorithm, fmt.Errorf("%w: EC key on curve %s, want SM2", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return SM2SM3, nil
	case *rsa.PublicKey:
		if k == nil {
			break
		}
		return RSASHA1, nil
	}
	return UnknownAlgorithm, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// Sign signs the sign source with key and returns the signValue.
//
// For an SM2 key the signature is SM2 over SM3 with DefaultUID, returned as
// base64 of the raw 64-byte r||s. key must be an *sm2.PrivateKey, an
// *ecdsa.PrivateKey on the SM2 curve, or a crypto.Signer that honours
// *sm2.SM2SignerOption (signs the raw message with the given uid) and
// returns an ASN.1 DER signature. For an RSA key the signature is PKCS#1
// v1.5 over the SHA-1 of source. Any other key type is an error.
//
// Sign checks the signature against the key's public key before returning
// it, so a signer that ignores the options cannot produce a bad signValue.
func Sign(key crypto.Signer, source []byte) (string, error) {
	if key == nil {
		return "", fmt.Errorf("%w: no key", ErrUnsupportedKey)
	}
	pub := key.Public()
	alg, err := AlgorithmOf(pub)
	if err != nil {
		return "", err
	}
	var sig []byte
	switch alg {
	case SM2SM3:
		if k, ok := key.(*ecdsa.PrivateKey); ok {
			if key, err = new(sm2.PrivateKey).FromECPrivateKey(k); err != nil {
				return "", fmt.Errorf("signature: sm2 key: %w", err)
			}
		}
		der, err := key.Sign(rand.Reader, source, sm2.NewSM2SignerOption(true, []byte(DefaultUID)))
		if err != nil {
			return "", fmt.Errorf("signature: sm2 sign: %w", err)
		}
		if sig, err = SM2ASN1ToRaw(der); err != nil {
			return "", fmt.Errorf("signature: sm2 signer output: %w", err)
		}
	case RSASHA1:
		digest := sha1.Sum(source)
		if sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA1); err != nil {
			return "", fmt.Errorf("signature: rsa sign: %w", err)
		}
	}
	if err := verifyBytes(pub, alg, source, sig); err != nil {
		return "", fmt.Errorf("signature: %s signer produced a signature that does not verify: %w", alg, err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks that signValue is a valid signature of source under the
// public key of cert, with the algorithm chosen by that key's type (see
// Sign). The error wraps ErrEncoding, ErrLength, ErrMismatch or
// ErrUnsupportedKey, so callers can tell the kinds apart with errors.Is.
func Verify(cert *smx509.Certificate, source []byte, signValue string) error {
	if cert == nil {
		return fmt.Errorf("%w: no certificate", ErrUnsupportedKey)
	}
	return VerifyPublicKey(cert.PublicKey, source, signValue)
}

// VerifyPublicKey is Verify for a bare public key (an *ecdsa.PublicKey on
// the SM2 curve or an *rsa.PublicKey).
func VerifyPublicKey(pub crypto.PublicKey, source []byte, signValue string) error {
	alg, err := AlgorithmOf(pub)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(signValue)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	return verifyBytes(pub, alg, source, sig)
}

// verifyBytes checks a decoded signature; alg must be AlgorithmOf(pub).
func verifyBytes(pub crypto.PublicKey, alg Algorithm, source, sig []byte) error {
	switch alg {
	case SM2SM3:
		if len(sig) != SM2SignatureSize {
			return fmt.Errorf("%w: %d bytes, want %d (raw SM2 r||s)", ErrLength, len(sig), SM2SignatureSize)
		}
		der, err := SM2RawToASN1(sig)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		if !sm2.VerifyASN1WithSM2(pub.(*ecdsa.PublicKey), []byte(DefaultUID), source, der) {
			return fmt.Errorf("%w (%s)", ErrMismatch, alg)
		}
		return nil
	case RSASHA1:
		k := pub.(*rsa.PublicKey)
		if len(sig) != k.Size() {
			return fmt.Errorf("%w: %d bytes, want %d (RSA-%d)", ErrLength, len(sig), k.Size(), k.N.BitLen())
		}
		digest := sha1.Sum(source)
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA1, digest[:], sig); err != nil {
			return fmt.Errorf("%w (%s)", ErrMismatch, alg)
		}
		return nil
	}
	return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// MatchesKey returns nil when key is the private key of cert's public key,
// and an error wrapping ErrKeyMismatch otherwise (ErrUnsupportedKey when
// either key is neither SM2 nor RSA).
func MatchesKey(cert *smx509.Certificate, key crypto.Signer) error {
	if cert == nil || key == nil {
		return fmt.Errorf("%w: missing certificate or key", ErrKeyMismatch)
	}
	certAlg, err := AlgorithmOf(cert.PublicKey)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	pub := key.Public()
	keyAlg, err := AlgorithmOf(pub)
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	if certAlg != keyAlg {
		return fmt.Errorf("%w: certificate is %s, key is %s", ErrKeyMismatch, certAlg, keyAlg)
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return fmt.Errorf("%w (certNo %s)", ErrKeyMismatch, CertNo(cert))
	}
	return nil
}
