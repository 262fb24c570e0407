package signer

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/emmansun/gmsm/smx509"
)

// Signer signs 179 sign sources with one key and certificate.
type Signer interface {
	// Sign returns the signValue of source: base64 of the raw signature
	// customs expects for the certificate's key type. ctx bounds the call.
	Sign(ctx context.Context, source []byte) (string, error)
	// Certificate returns the certificate of the signing key.
	Certificate() *smx509.Certificate
	// CertNo returns the certificate's certNo (lower-case hex serial).
	CertNo() string
	// Concurrency returns how many Sign calls the backend runs at once:
	// 1 for a card, more for a cipher machine.
	Concurrency() int
	// Close releases the backend's connections and sessions.
	Close() error
}

// Pinger is implemented by signers that can be checked without signing
// (and without sending the PIN), such as the E-Port control.
type Pinger interface {
	// Ping returns nil when the device answers and holds the same
	// certificate as when it was opened.
	Ping(ctx context.Context) error
}

// Errors returned (wrapped) by the backends; test with errors.Is.
var (
	// ErrPINRefused means the device refused the PIN (wrong, locked,
	// expired). The signer must not be used again: retrying locks the card.
	ErrPINRefused = errors.New("signer: PIN refused")
	// ErrUnavailable means the device or its control cannot be reached or
	// did not answer in time. The signer may work again later.
	ErrUnavailable = errors.New("signer: device unavailable")
	// ErrDevice means the device answered with an error (reader problem,
	// card removed, bad reply). The signer may work again later.
	ErrDevice = errors.New("signer: device error")
)

// KeySigner is a Signer over a crypto.Signer that holds the key (a key
// file, a PKCS#11 object). Signing follows package signature, and every
// signature is checked against the certificate before it is returned.
type KeySigner struct {
	key         crypto.Signer
	cert        *smx509.Certificate
	certNo      string
	concurrency int
	closer      func() error

	// sem serialises Sign when concurrency is 1 (a token that cannot
	// sign in parallel) and bounds it otherwise.
	sem       chan struct{}
	closeOnce sync.Once
}

var _ Signer = (*KeySigner)(nil)

// NewKeySigner returns a Signer over key with certificate cert. It checks
// that key belongs to cert. concurrency < 1 means 1. closer, if not nil,
// runs on Close.
func NewKeySigner(key crypto.Signer, cert *smx509.Certificate, concurrency int, closer func() error) (*KeySigner, error) {
	if err := signature.MatchesKey(cert, key); err != nil {
		return nil, err
	}
	if concurrency < 1 {
		concurrency = 1
	}
	return &KeySigner{
		key:         key,
		cert:        cert,
		certNo:      signature.CertNo(cert),
		concurrency: concurrency,
		closer:      closer,
		sem:         make(chan struct{}, concurrency),
	}, nil
}

// Sign signs source; see Signer.
func (s *KeySigner) Sign(ctx context.Context, source []byte) (string, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	type result struct {
		v   string
		err error
	}
	// The key's Sign takes no context; run it aside so a hung device
	// cannot hold the caller past ctx. The slot stays taken until the
	// device returns, so a token never sees more calls than it can take.
	done := make(chan result, 1)
	go func() {
		defer func() { <-s.sem }()
		v, err := signature.Sign(s.key, source)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", r.err
		}
		if err := signature.Verify(s.cert, source, r.v); err != nil {
			return "", fmt.Errorf("%w: %w", ErrDevice, err)
		}
		return r.v, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: sign: %w", ErrUnavailable, ctx.Err())
	}
}

// Certificate returns the certificate; see Signer.
func (s *KeySigner) Certificate() *smx509.Certificate { return s.cert }

// CertNo returns the certNo; see Signer.
func (s *KeySigner) CertNo() string { return s.certNo }

// Concurrency returns the number of parallel signatures; see Signer.
func (s *KeySigner) Concurrency() int { return s.concurrency }

// Close runs the closer given to NewKeySigner, once.
func (s *KeySigner) Close() error {
	if s.closer == nil {
		return nil
	}
	var err error
	s.closeOnce.Do(func() { err = s.closer() })
	return err
}
