package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
)

// Check opens every configured signer, reads its certificate, makes one
// test signature (no buyer data) and verifies it locally, and writes one
// line per signer to w. It does not touch the queue or the upload
// function. A card is first checked without its PIN; a card on which this
// PIN is blocked (refused, or struck: a marker in the machine's state
// directory, written by any hsmbridge or ceb179 local on it) gets no PIN at
// all and the line says why. Otherwise it gets one PIN attempt.
func Check(ctx context.Context, cfg Config, log *slog.Logger, w io.Writer) error {
	specs, err := cfg.SignerSpecs(log)
	if err != nil {
		return err
	}
	timeout := cfg.SignTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	var errs []error
	for _, spec := range specs {
		if err := checkOne(ctx, spec, timeout, w); err != nil {
			fmt.Fprintf(w, "FAIL %s (ebpCode %s): %v\n", spec.Name, spec.EbpCode, err)
			errs = append(errs, fmt.Errorf("signer %s: %w", spec.Name, err))
		}
	}
	return errors.Join(errs...)
}

func checkOne(ctx context.Context, spec SignerSpec, timeout time.Duration, w io.Writer) error {
	octx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	s, err := spec.Open(octx)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer s.Close()
	if p, ok := s.(signer.Pinger); ok {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := p.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("check without PIN: %w", err)
		}
	}
	cert := s.Certificate()
	alg, err := signature.AlgorithmOf(cert.PublicKey)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	v, err := s.Sign(sctx, probeSource)
	if err != nil {
		return fmt.Errorf("test signature: %w", err)
	}
	took := time.Since(start)
	if err := signature.Verify(cert, probeSource, v); err != nil {
		return fmt.Errorf("test signature does not verify: %w", err)
	}
	fmt.Fprintf(w, "OK   %s (ebpCode %s): certNo %s, key %s, valid until %s, test signature verified in %s\n",
		spec.Name, spec.EbpCode, s.CertNo(), alg, cert.NotAfter.Format(time.DateOnly), took.Round(time.Millisecond))
	return nil
}
