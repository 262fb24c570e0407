package upload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/signature"
)

// CertStore reads registered certificates (the DynamoDB store implements it).
type CertStore interface {
	GetCertificate(ctx context.Context, ebpCode, certNo string) (ceb179.Certificate, error)
}

// CertCache is the Certificates of the upload function: certificates from
// the payments table (pk CERT#<ebpCode>, sk <certNo>), parsed once and kept
// for a while. Unknown certificates are not cached, so a newly registered
// one is used at once.
type CertCache struct {
	src CertStore
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[[2]string]certEntry
}

type certEntry struct {
	cert    *smx509.Certificate
	fetched time.Time
}

var _ Certificates = (*CertCache)(nil)

// NewCertCache returns a cache over src that keeps each certificate for ttl.
func NewCertCache(src CertStore, ttl time.Duration) *CertCache {
	return &CertCache{src: src, ttl: ttl, now: time.Now, entries: map[[2]string]certEntry{}}
}

// Certificate returns the certificate certNo registered for ebpCode. The
// stored PEM must parse and its serial number must be certNo.
func (c *CertCache) Certificate(ctx context.Context, ebpCode, certNo string) (*smx509.Certificate, error) {
	key := [2]string{ebpCode, certNo}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.fetched) < c.ttl {
		return e.cert, nil
	}
	rec, err := c.src.GetCertificate(ctx, ebpCode, certNo)
	if errors.Is(err, ceb179.ErrNotFound) {
		return nil, fmt.Errorf("%s/%s: %w", ebpCode, certNo, ErrUnknownCertificate)
	}
	if err != nil {
		return nil, err
	}
	cert, err := signature.ParseCertificatePEM(rec.PEM)
	if err != nil {
		return nil, fmt.Errorf("registered certificate %s/%s: %w", ebpCode, certNo, err)
	}
	if got := signature.CertNo(cert); got != certNo {
		return nil, fmt.Errorf("registered certificate %s/%s has serial %s", ebpCode, certNo, got)
	}
	c.mu.Lock()
	c.entries[key] = certEntry{cert: cert, fetched: c.now()}
	c.mu.Unlock()
	return cert, nil
}
