package devstack

import (
	"context"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/devcert"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
)

// SignerInfo is one signer of the local stack's hsmbridge as it was when the
// stack started: what it is and which certificate it signs with.
type SignerInfo struct {
	// Name is the signer's name.
	Name string
	// Type is eport, pkcs11, sdf, keyfile or kms.
	Type string
	// EbpCode is the platform code it signs for; its certificate is
	// registered for that code.
	EbpCode string
	// CertNo is the certNo of its certificate ("" while it is not open).
	CertNo string
	// KeyType names its key and signature scheme, such as "SM2 (SM3)" or
	// "RSA-1024 (SHA-1)".
	KeyType string
	// NotAfter is when its certificate expires.
	NotAfter time.Time
	// Err is why it did not open at start ("" when it opened). hsmbridge
	// keeps trying it.
	Err string
}

// LoadBridgeConfig reads an hsmbridge configuration file for the local
// stack. Its queue URL and upload function are not needed (the local stack
// brings its own), so a file without them is accepted; every other setting
// is read and checked as `hsmbridge run` does, environment overrides
// (HSMBRIDGE_*) included.
func LoadBridgeConfig(path string) (*bridge.Config, error) {
	getenv := func(name string) string {
		switch name {
		case "HSMBRIDGE_QUEUE_URL":
			return "local-sign-queue"
		case "HSMBRIDGE_UPLOAD_FUNCTION":
			return "local-upload"
		}
		return os.Getenv(name)
	}
	c, err := bridge.LoadConfig(path, getenv)
	if err != nil {
		return nil, fmt.Errorf("hsmbridge config %s: %w", path, err)
	}
	return &c, nil
}

// bridgeEbpCode is the ebpCode of the first signer of c ("" without c): the
// demo records of a stack that signs with c are that platform's.
func bridgeEbpCode(c *bridge.Config) string {
	if c == nil || len(c.Signers) == 0 {
		return ""
	}
	return c.Signers[0].EbpCode
}

// signing is what the local stack's hsmbridge signs with: the signers, the
// options that come with them, and the certificates to register. The
// signers of an hsmbridge configuration register their certificate when
// hsmbridge opens them (the certificate is read from the card or the
// certificate file then, with no extra call to the device).
type signing struct {
	specs []bridge.SignerSpec
	base  bridge.Options

	// pair is the key-file pair of a stack without a configuration,
	// registered before hsmbridge starts.
	pair *devcert.Pair

	// pinMarkers is the folder of the PIN markers, shared with every
	// hsmbridge on the machine ("" when no signer sends a PIN).
	pinMarkers string

	mu       sync.Mutex
	register func(ctx context.Context, ebpCode string, cert *smx509.Certificate) error
	infos    []SignerInfo
	status   string
	opened   []chan struct{}
	once     []sync.Once
}

// newSigning returns the signers of o: those of o.BridgeConfig, or
// o.Signers key-file signers with the given or development key pair.
func newSigning(o Options, log *slog.Logger) (*signing, error) {
	if o.BridgeConfig != nil {
		return configSigning(*o.BridgeConfig, log)
	}
	pair, err := signingPair(o)
	if err != nil {
		return nil, err
	}
	g := &signing{
		pair: pair,
		base: bridge.Options{ReceiveWait: 2 * time.Second, RetryDelay: 2 * time.Second},
	}
	if o.SignVisibility > 0 {
		g.base.Visibility, g.base.RetryDelay = o.SignVisibility, o.SignVisibility
		g.base.ProbeInterval = o.SignVisibility
	}
	for i := range o.Signers {
		name := fmt.Sprintf("keyfile-%d", i+1)
		g.specs = append(g.specs, bridge.SignerSpec{
			Name:    name,
			EbpCode: o.EbpCode,
			Open: func(context.Context) (signer.Signer, error) {
				if o.Faults.SignerDown != nil && o.Faults.SignerDown() {
					return nil, errors.New("no card in the reader")
				}
				ks, err := signer.NewKeySigner(pair.Key, pair.Cert, 1, nil)
				if err != nil || o.SignRate <= 0 {
					return ks, err
				}
				return newPaced(ks, o.SignRate), nil
			},
		})
		g.infos = append(g.infos, certInfo(SignerInfo{Name: name, Type: "keyfile", EbpCode: o.EbpCode}, pair.Cert))
	}
	return g, nil
}

// configSigning returns the signers of an hsmbridge configuration with its
// timeouts and scheduling options. The queue, the upload function and the
// heartbeat are the local stack's business and are not taken from it; the
// status endpoint is served where the file says. The PIN markers are the
// machine's, as for `hsmbridge run` and `hsmbridge check`: a PIN blocked
// by one is blocked for all.
func configSigning(c bridge.Config, log *slog.Logger) (*signing, error) {
	specs, err := c.SignerSpecs(log)
	if err != nil {
		return nil, err
	}
	markers, err := c.PINMarkersDir()
	if err != nil {
		return nil, err
	}
	base := c.Options()
	// The sign queue of template.yaml has its own maxReceiveCount.
	base.MaxReceiveCount = 0
	base.ReceiveWait = 2 * time.Second
	g := &signing{base: base, pinMarkers: markers}
	for i, spec := range specs {
		sc := c.Signers[i]
		g.infos = append(g.infos, SignerInfo{Name: spec.Name, Type: sc.Type, EbpCode: spec.EbpCode, Err: "not opened yet"})
		g.opened = append(g.opened, make(chan struct{}))
		open, ebp := spec.Open, spec.EbpCode
		spec.Open = func(ctx context.Context) (signer.Signer, error) { return g.open(ctx, i, ebp, open) }
		g.specs = append(g.specs, spec)
	}
	g.once = make([]sync.Once, len(specs))
	return g, nil
}

// open opens signer i for hsmbridge and registers its certificate for the
// signer's ebpCode before the signer signs anything. A certificate that
// cannot be registered keeps the signer closed (its uploads would be
// refused); hsmbridge tries again later.
func (g *signing) open(ctx context.Context, i int, ebpCode string, open func(context.Context) (signer.Signer, error)) (signer.Signer, error) {
	s, err := open(ctx)
	if err == nil {
		g.mu.Lock()
		register := g.register
		g.mu.Unlock()
		if register == nil {
			err = fmt.Errorf("%w: the local stack is not ready to register certificates", signer.ErrUnavailable)
		} else {
			err = register(ctx, ebpCode, s.Certificate())
		}
		if err != nil {
			_ = s.Close()
			s, err = nil, fmt.Errorf("%w: register certificate: %w", signer.ErrUnavailable, err)
		}
	}
	g.mu.Lock()
	if err != nil {
		g.infos[i].Err = err.Error()
	} else {
		g.infos[i] = certInfo(g.infos[i], s.Certificate())
	}
	g.mu.Unlock()
	g.once[i].Do(func() { close(g.opened[i]) })
	return s, err
}

// start sets where certificates are registered and registers the key-file
// pair's.
func (g *signing) start(ctx context.Context, ebpCode string, register func(context.Context, string, *smx509.Certificate) error) error {
	g.mu.Lock()
	g.register = register
	g.mu.Unlock()
	if g.pair != nil {
		return register(ctx, ebpCode, g.pair.Cert)
	}
	return nil
}

// options returns hsmbridge's options with the local queue, uploader and
// logger.
func (g *signing) options(q bridge.Queue, up bridge.Uploader, log *slog.Logger) bridge.Options {
	o := g.base
	o.Queue, o.Uploader, o.Signers, o.Logger = q, up, g.specs, log
	o.OnStatusListen = func(a net.Addr) {
		g.mu.Lock()
		g.status = "http://" + a.String() + "/status"
		g.mu.Unlock()
	}
	return o
}

// await waits until hsmbridge tried to open each signer once, at most
// within (a signer that does not answer by then keeps being tried), and
// returns the signers as they are and the URL of hsmbridge's status
// endpoint. It returns early with an error when stopped is closed:
// hsmbridge could not start.
func (g *signing) await(ctx context.Context, within time.Duration, stopped <-chan struct{}) ([]SignerInfo, string, error) {
	timeout := time.NewTimer(within)
	defer timeout.Stop()
wait:
	for _, ch := range g.opened {
		select {
		case <-ch:
		case <-timeout.C:
			break wait
		case <-stopped:
			return nil, "", errors.New("hsmbridge stopped while opening its signers")
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]SignerInfo(nil), g.infos...), g.status, nil
}

// certInfo fills in what the certificate tells about a signer.
func certInfo(si SignerInfo, cert *smx509.Certificate) SignerInfo {
	si.CertNo, si.NotAfter, si.Err = signature.CertNo(cert), cert.NotAfter, ""
	si.KeyType = KeyType(cert)
	return si
}

// KeyType names the key of cert and the scheme customs expects for it:
// "SM2 (SM3)" or "RSA-1024 (SHA-1)".
func KeyType(cert *smx509.Certificate) string {
	alg, err := signature.AlgorithmOf(cert.PublicKey)
	switch {
	case err != nil:
		return "unsupported key"
	case alg == signature.RSASHA1:
		if k, ok := cert.PublicKey.(*rsa.PublicKey); ok {
			return fmt.Sprintf("RSA-%d (SHA-1)", k.N.BitLen())
		}
		return "RSA (SHA-1)"
	default:
		return "SM2 (SM3)"
	}
}

// certPEM returns cert as PEM.
func certPEM(cert *smx509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// registerCert registers cert for ebpCode in the stack's tables (what
// `ceb179 cert register --local` does) and with the embedded customs
// simulator.
func (s *Stack) registerCert(ctx context.Context, ebpCode string, cert *smx509.Certificate) error {
	if s.Sim != nil {
		s.Sim.Register(ebpCode, cert)
	}
	return s.Store.PutCertificate(ctx, ceb179.Certificate{
		EbpCode: ebpCode, CertNo: signature.CertNo(cert), PEM: certPEM(cert), NotAfter: cert.NotAfter, RegisteredAt: time.Now(),
	})
}

// firstErr returns a component failure already reported, if any, without
// waiting.
func (s *Stack) firstErr() error {
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}
