package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// Defaults of an SDF signer.
const (
	// DefaultSDFSessions is how many sessions sign in parallel when the
	// configuration does not say.
	DefaultSDFSessions = 4
	// DefaultSDFCallTimeout bounds one call into the SDF library.
	DefaultSDFCallTimeout = 10 * time.Second
)

// SDFConfig configures an SDF signer: a cipher machine (服务类密码设备)
// reached through its vendor's GM/T 0018 library.
type SDFConfig struct {
	// Library is the path of the vendor's SDF library (libswsds.so,
	// swsds.dll, ...).
	Library string
	// KeyIndex is the index of the signing key pair in the device.
	KeyIndex uint32
	// CertFile is the PEM certificate of that key (the device does not
	// hold it); its key type chooses SM2 or RSA.
	CertFile string
	// PIN is the private-key access password.
	PIN PIN
	// Sessions is how many sessions sign in parallel;
	// DefaultSDFSessions when zero.
	Sessions int
	// CallTimeout bounds one call into the library; a call that does not
	// return in time is abandoned with its session.
	// DefaultSDFCallTimeout when zero.
	CallTimeout time.Duration
	// ECCFieldSize is the size in bytes of each field of the library's
	// ECCrefPublicKey and ECCSignature: 64 (GM/T 0018-2012,
	// ECCref_MAX_BITS 512; the default when zero) or 32 (headers with
	// ECCref_MAX_BITS 256). Values are right-aligned in their fields.
	ECCFieldSize int
	// Guard is the door the password goes through: the machine's PIN
	// guard, shared by every signer of the process. Required.
	Guard *PINGuard
	// Name is the signer entry's name, recorded on a refused-PIN marker.
	Name string
}

// SDF is a Signer over a cipher machine's GM/T 0018 SDF library, loaded at
// run time. It keeps a pool of sessions, each holding the private-key
// access right, and signs on them in parallel: SM2 keys sign e =
// SM3(Z||M), computed here with the default user id, with
// SDF_InternalSign_ECC; RSA keys sign a PKCS#1 v1.5 block around the
// SHA-1 DigestInfo, built here, with SDF_InternalPrivateKeyOperation_RSA.
// Every signature is verified against the certificate before it is
// returned. Every library call is bounded by the caller's context and the
// call timeout; a session whose call failed on the device's side or did
// not return is replaced by a new one.
type SDF struct {
	cfg    SDFConfig
	lib    sdfLib
	dev    *sdfDevice
	cert   *smx509.Certificate
	certNo string
	alg    signature.Algorithm
	card   string
	za     []byte         // SM2: Z of the public key with the default user id
	rsaPub *rsa.PublicKey // RSA: the certificate's key

	idle      chan *sdfSession
	slots     chan struct{}
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	mu        sync.Mutex
	closed    bool
	wg        sync.WaitGroup // Sign calls under way
	inCalls   atomic.Int64   // library calls not finished, abandoned ones included
}

// errSDFClosed is returned by Sign after Close.
var errSDFClosed = fmt.Errorf("%w: sdf signer closed", ErrUnavailable)

var _ Signer = (*SDF)(nil)

// sdfSession is an open session with its buffers. The buffers live on the
// heap for as long as the session, so a call abandoned on a hung device
// can still write into them; such a session is never used again.
type sdfSession struct {
	h      uintptr
	in     []byte
	out    []byte
	outLen uint32
	pub    []byte
}

// OpenSDF loads the library, opens the device and the sessions, checks
// without the password that the key at KeyIndex is the certificate's
// (when the library can export it), and then gets the private-key access
// right on every session. The password goes through the PIN guard: a
// password the device refused before is not sent, and a refused or
// unanswered access-right call is remembered as a refusal.
func OpenSDF(ctx context.Context, cfg SDFConfig) (*SDF, error) {
	return openSDF(ctx, cfg, func(path string) (sdfLib, error) { return loadSDFLibrary(path) })
}

// openSDF is OpenSDF with the library loaded by load.
func openSDF(ctx context.Context, cfg SDFConfig, load func(path string) (sdfLib, error)) (*SDF, error) {
	if cfg.Library == "" || cfg.CertFile == "" {
		return nil, errors.New("sdf: library and certFile are required")
	}
	if cfg.PIN.Empty() {
		return nil, errors.New("sdf: no access password (pinFile or pinEnv)")
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = DefaultSDFSessions
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultSDFCallTimeout
	}
	switch cfg.ECCFieldSize {
	case 0:
		cfg.ECCFieldSize = 64
	case 32, 64:
	default:
		return nil, fmt.Errorf("sdf: ECC field size %d: want 64 or 32", cfg.ECCFieldSize)
	}
	if cfg.Guard == nil {
		return nil, errors.New("sdf: no PIN guard (a cipher machine's access password needs the machine's PIN guard)")
	}
	lib, err := filepath.Abs(cfg.Library)
	if err != nil {
		return nil, fmt.Errorf("sdf: library path: %w", err)
	}
	cfg.Library = lib
	s := &SDF{
		cfg:   cfg,
		slots: make(chan struct{}, cfg.Sessions),
		idle:  make(chan *sdfSession, cfg.Sessions),
		done:  make(chan struct{}),
	}
	if err := s.readCertificate(); err != nil {
		return nil, err
	}
	l, err := load(cfg.Library)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.lib = l
	if s.dev, err = acquireSDFDevice(ctx, l, cfg.Library, cfg.CallTimeout); err != nil {
		return nil, err
	}
	for range cfg.Sessions {
		sess, err := s.openSession(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.idle <- sess
	}
	return s, nil
}

// readCertificate reads the certificate and prepares what signing needs
// from its public key.
func (s *SDF) readCertificate() error {
	b, err := os.ReadFile(s.cfg.CertFile)
	if err != nil {
		return fmt.Errorf("sdf: read certificate: %w", err)
	}
	if s.cert, err = signature.ParseCertificatePEM(b); err != nil {
		return fmt.Errorf("sdf: certificate %s: %w", s.cfg.CertFile, err)
	}
	if s.alg, err = signature.AlgorithmOf(s.cert.PublicKey); err != nil {
		return fmt.Errorf("sdf: certificate %s: %w", s.cfg.CertFile, err)
	}
	s.certNo = signature.CertNo(s.cert)
	s.card = sdfCardID(s.cert)
	switch pub := s.cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if s.za, err = sm2.CalculateZA(pub, []byte(signature.DefaultUID)); err != nil {
			return fmt.Errorf("sdf: SM2 Z value: %w", err)
		}
	case *rsa.PublicKey:
		if pub.Size() > sdfRSABlockSize/2 {
			return fmt.Errorf("sdf: RSA-%d key: SDF signs RSA keys of at most 2048 bits", pub.N.BitLen())
		}
		s.rsaPub = pub
	}
	return nil
}

// sdfCardID identifies the key for the PIN guard: a digest of its public
// key, which the device shows it holds before the password is sent. The
// library's path, the device's serial number and the key index can all
// change under one key (a library moved, a cluster of cipher machines
// behind one library), and a refused password must stay refused for it.
func sdfCardID(cert *smx509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sdf-key-" + hex.EncodeToString(sum[:16])
}

// withPIN sends the access password to the device through the PIN guard,
// the signer's one use of it: check is the PIN-free check of the key the
// guard runs before a trial, and call hands the password over and says
// how that went. The guard sends nothing for a password the device
// refused before or a call that struck, and records a refusal or a strike
// before withPIN returns.
func (s *SDF) withPIN(ctx context.Context, check func(context.Context) error, call PINCall) error {
	return s.cfg.Guard.Do(ctx, Card{ID: s.card, Signer: s.cfg.Name, Check: check}, s.cfg.PIN, call)
}

// openSession opens a session, checks the key without the password, and
// gets the access right on it.
func (s *SDF) openSession(ctx context.Context) (*sdfSession, error) {
	sess := &sdfSession{
		in:  make([]byte, sdfRSABlockSize),
		out: make([]byte, sdfRSABlockSize),
		pub: make([]byte, sdfRSAPublicKeySize),
	}
	code, err := s.call(ctx, func() uint32 { return s.lib.OpenSession(s.dev.h, &sess.h) }, func(code uint32) {
		if code == 0 {
			s.closeSession(sess)
		}
	})
	if err != nil {
		return nil, s.timeoutError("SDF_OpenSession", err)
	}
	if code != 0 {
		return nil, sdfFailure("SDF_OpenSession", code)
	}
	if err := s.checkKey(ctx, sess); err != nil {
		if !errors.Is(err, errSDFTimeout) {
			s.discard(sess)
		}
		return nil, err
	}
	// The key is checked without the password on every new session; a
	// trial (a password not yet accepted in this process) checks it again
	// right before the password goes.
	check := func(ctx context.Context) error { return s.checkKey(ctx, sess) }
	abandoned := false
	err = s.withPIN(ctx, check, func(ctx context.Context, pin PIN) (PINResult, error) {
		pw := []byte(pin.Reveal())
		// The password is on its way: only the call timeout ends the wait,
		// not the caller's context, which would turn an answer still to
		// come into a strike.
		code, err := s.call(context.WithoutCancel(ctx), func() uint32 {
			return s.lib.GetPrivateKeyAccessRight(sess.h, s.cfg.KeyIndex, pw)
		}, func(uint32) {
			clear(pw)
			s.closeSession(sess)
		})
		if err != nil {
			abandoned = true
			return PINUnknown, sdfAccessRefusal(0, err)
		}
		clear(pw)
		if code == 0 {
			return PINAccepted, nil
		}
		if sdfCodes[code].password {
			return PINRefused, sdfAccessRefusal(code, nil)
		}
		return PINUnknown, sdfAccessRefusal(code, nil)
	})
	if err != nil {
		// A session with a call still inside the library is closed by that
		// call's late handler.
		if !abandoned && !errors.Is(err, errSDFTimeout) {
			s.discard(sess)
		}
		return nil, err
	}
	return sess, nil
}

// checkKey reads the public key at the key index without the password and
// compares it with the certificate's. A library that cannot export it
// (SDR_NOTSUPPORT) is let through: the first signature is verified
// against the certificate anyway.
func (s *SDF) checkKey(ctx context.Context, sess *sdfSession) error {
	clear(sess.pub)
	export, fn := s.lib.ExportSignPublicKeyECC, "SDF_ExportSignPublicKey_ECC"
	if s.alg == signature.RSASHA1 {
		export, fn = s.lib.ExportSignPublicKeyRSA, "SDF_ExportSignPublicKey_RSA"
	}
	code, err := s.call(ctx, func() uint32 { return export(sess.h, s.cfg.KeyIndex, sess.pub) }, s.closeLate(sess))
	if err != nil {
		return s.timeoutError(fn, err)
	}
	switch code {
	case 0:
	case 0x01000002: // SDR_NOTSUPPORT
		return nil
	default:
		return sdfFailure(fn, code)
	}
	if s.alg == signature.RSASHA1 {
		return s.matchRSA(sess.pub)
	}
	return s.matchECC(sess.pub)
}

// matchECC compares an exported ECCrefPublicKey with the certificate's
// key, and says which field size the library uses when it is not the
// configured one.
func (s *SDF) matchECC(b []byte) error {
	point, err := uncompressedPoint(s.cert)
	if err != nil {
		return err
	}
	for _, size := range []int{s.cfg.ECCFieldSize, 96 - s.cfg.ECCFieldSize} {
		x, okx := rightAligned(b[4:4+size], 32)
		y, oky := rightAligned(b[4+size:4+2*size], 32)
		if !okx || !oky || !bytes.Equal(x, point[1:33]) || !bytes.Equal(y, point[33:65]) {
			continue
		}
		if size == s.cfg.ECCFieldSize {
			return nil
		}
		return fmt.Errorf("%w: sdf: the library writes ECC values in %d-byte fields (its header sets ECCref_MAX_BITS %d); set eccSignatureLayout: %d", ErrDevice, size, size*8, size)
	}
	return fmt.Errorf("%w: sdf: the SM2 key at index %d is not the key of certificate %s (certNo %s); no password sent", ErrDevice, s.cfg.KeyIndex, s.cfg.CertFile, s.certNo)
}

// uncompressedPoint returns the SM2 public key of cert as 04||x||y, read
// from the certificate's SubjectPublicKeyInfo.
func uncompressedPoint(cert *smx509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil || len(spki.Key.Bytes) != 65 || spki.Key.Bytes[0] != 4 {
		return nil, fmt.Errorf("sdf: the certificate's SM2 key is not an uncompressed point (%v)", err)
	}
	return spki.Key.Bytes, nil
}

// matchRSA compares an exported RSArefPublicKey with the certificate's
// key, in 256-byte fields (RSAref_MAX_BITS 2048) or 512-byte ones.
func (s *SDF) matchRSA(b []byte) error {
	for _, size := range []int{256, 512} {
		n := new(big.Int).SetBytes(b[4 : 4+size])
		e := new(big.Int).SetBytes(b[4+size : 4+2*size])
		if n.Cmp(s.rsaPub.N) == 0 && e.IsInt64() && e.Int64() == int64(s.rsaPub.E) {
			return nil
		}
	}
	return fmt.Errorf("%w: sdf: the RSA key at index %d is not the key of certificate %s (certNo %s); no password sent", ErrDevice, s.cfg.KeyIndex, s.cfg.CertFile, s.certNo)
}

// rightAligned returns the last n bytes of field when every byte before
// them is zero.
func rightAligned(field []byte, n int) ([]byte, bool) {
	pad := len(field) - n
	for _, c := range field[:pad] {
		if c != 0 {
			return nil, false
		}
	}
	return field[pad:], true
}

// call runs one library call on its own goroutine and waits for it until
// ctx is done or the call timeout passes, whichever is first. A call
// still running then is abandoned (the error wraps errSDFTimeout); late,
// if not nil, gets its code when it returns. A call whose ctx is done
// before it starts is not made (the error wraps ErrUnavailable only).
//
// Close counts on it: calls are counted in inCalls from before they start
// until the library returned and, for an abandoned call, late is done.
func (s *SDF) call(ctx context.Context, fn func() uint32, late func(uint32)) (uint32, error) {
	if err := ctx.Err(); err != nil {
		// Not called at all: nothing was abandoned.
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.inCalls.Add(1)
	return boundedCall(ctx, s.cfg.CallTimeout, fn, late, func() { s.inCalls.Add(-1) })
}

// boundedCall runs fn on its own goroutine; see SDF.call. finished, if not
// nil, runs when fn has returned and, for an abandoned call, late too.
func boundedCall(ctx context.Context, timeout time.Duration, fn func() uint32, late func(uint32), finished func()) (uint32, error) {
	ch := make(chan uint32, 1)
	var mu sync.Mutex
	abandoned := false
	go func() {
		if finished != nil {
			defer finished()
		}
		code := fn()
		mu.Lock()
		if abandoned {
			mu.Unlock()
			if late != nil {
				late(code)
			}
			return
		}
		ch <- code
		mu.Unlock()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var why error
	select {
	case code := <-ch:
		return code, nil
	case <-t.C:
		why = fmt.Errorf("%w after %s", errSDFTimeout, timeout)
	case <-ctx.Done():
		why = fmt.Errorf("%w: %w", errSDFTimeout, ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case code := <-ch:
		return code, nil // it answered as the bound passed
	default:
	}
	abandoned = true
	return 0, why
}

// timeoutError is the error of a call other than the access-right call
// that did not return in time (err wraps errSDFTimeout).
func (s *SDF) timeoutError(fn string, err error) error {
	if !errors.Is(err, errSDFTimeout) {
		return fmt.Errorf("%s not called: %w", fn, err)
	}
	return &SDFError{Func: fn, Note: err.Error(), kind: ErrUnavailable, cause: err}
}

// discard closes a session that must not be used again, aside. A session
// whose call was abandoned is left to that call: closeLate closes it when
// the call returns.
func (s *SDF) discard(sess *sdfSession) {
	// Counted from now, so that Close waits for it.
	s.inCalls.Add(1)
	go func() {
		defer s.inCalls.Add(-1)
		s.closeSession(sess)
	}()
}

// closeLate returns the late handler of a call on sess: the session is
// closed once the abandoned call returns.
func (s *SDF) closeLate(sess *sdfSession) func(uint32) {
	return func(uint32) { s.closeSession(sess) }
}

// closeSession releases the access right and closes the session, each
// call bounded.
func (s *SDF) closeSession(sess *sdfSession) error {
	ctx := context.Background()
	s.call(ctx, func() uint32 { return s.lib.ReleasePrivateKeyAccessRight(sess.h, s.cfg.KeyIndex) }, nil)
	_, err := s.call(ctx, func() uint32 { return s.lib.CloseSession(sess.h) }, nil)
	return err
}

// Sign signs source on one of the sessions; see Signer. A session whose
// call failed on the device's side (a device or session error) is
// replaced by a new session, which is tried once before the error is
// returned; a session whose call did not answer is abandoned, and the
// error returned at once.
func (s *SDF) Sign(ctx context.Context, source []byte) (string, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", errSDFClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	select {
	case s.slots <- struct{}{}:
	case <-s.done:
		return "", errSDFClosed
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-s.slots }()
	var sig []byte
	var err error
	for try := 0; ; try++ {
		var sess *sdfSession
		select {
		case sess = <-s.idle:
		default:
			// A session was dropped after a failure: open its successor.
			if sess, err = s.openSession(ctx); err != nil {
				return "", err
			}
		}
		var keep bool
		sig, keep, err = s.signOn(ctx, sess, source)
		if keep {
			s.putBack(sess)
		}
		// A device or session error is tried once more on a new session;
		// a hung call is not: the device itself may be in trouble.
		if err == nil || try == 1 || !errors.Is(err, ErrUnavailable) || errors.Is(err, errSDFTimeout) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return "", err
	}
	v := base64.StdEncoding.EncodeToString(sig)
	if err := signature.Verify(s.cert, source, v); err != nil {
		return "", fmt.Errorf("%w: sdf: the device's signature does not verify against certificate %s: %w", ErrDevice, s.certNo, err)
	}
	return v, nil
}

// putBack returns a session to the pool, or closes it when the signer
// was closed meanwhile.
func (s *SDF) putBack(sess *sdfSession) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.discard(sess)
		return
	}
	s.idle <- sess
}

// signOn makes one signature on sess and says whether the session may be
// used again.
func (s *SDF) signOn(ctx context.Context, sess *sdfSession, source []byte) (sig []byte, keep bool, err error) {
	var fn string
	var call func() uint32
	if s.alg == signature.SM2SM3 {
		h := sm3.New()
		h.Write(s.za)
		h.Write(source)
		e := h.Sum(sess.in[:0])
		clear(sess.out[:sdfECCSignatureSize])
		fn = "SDF_InternalSign_ECC"
		call = func() uint32 { return s.lib.InternalSignECC(sess.h, s.cfg.KeyIndex, e, sess.out[:sdfECCSignatureSize]) }
	} else {
		k := s.rsaPub.Size()
		block := pkcs1SHA1Block(sess.in[:k], source)
		sess.outLen = uint32(len(sess.out))
		fn = "SDF_InternalPrivateKeyOperation_RSA"
		call = func() uint32 {
			return s.lib.InternalPrivateKeyOperationRSA(sess.h, s.cfg.KeyIndex, block, sess.out, &sess.outLen)
		}
	}
	code, err := s.call(ctx, call, s.closeLate(sess))
	if err != nil {
		return nil, false, s.timeoutError(fn, err)
	}
	if code != 0 {
		s.discard(sess)
		return nil, false, sdfFailure(fn, code)
	}
	if s.alg == signature.SM2SM3 {
		sig, err = s.eccSignature(sess.out[:sdfECCSignatureSize])
	} else {
		sig, err = s.rsaSignature(sess.out, sess.outLen)
	}
	return sig, true, err
}

// eccSignature reads r||s from an ECCSignature in the configured layout.
func (s *SDF) eccSignature(b []byte) ([]byte, error) {
	f := s.cfg.ECCFieldSize
	r, okr := rightAligned(b[:f], 32)
	ss, oks := rightAligned(b[f:2*f], 32)
	if !okr || !oks {
		return nil, fmt.Errorf("%w: sdf: the ECCSignature is not in %d-byte right-aligned fields (check eccSignatureLayout against the vendor header's ECCref_MAX_BITS)", ErrDevice, f)
	}
	return append(append(make([]byte, 0, signature.SM2SignatureSize), r...), ss...), nil
}

// rsaSignature returns the RSA result left-padded to the modulus size.
func (s *SDF) rsaSignature(out []byte, n uint32) ([]byte, error) {
	k := s.rsaPub.Size()
	if n == 0 || int(n) > k {
		return nil, fmt.Errorf("%w: sdf: RSA result of %d bytes for a %d-byte modulus", ErrDevice, n, k)
	}
	sig := make([]byte, k)
	copy(sig[k-int(n):], out[:n])
	return sig, nil
}

// sha1DigestInfo is the DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-1.
var sha1DigestInfo = []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}

// pkcs1SHA1Block writes the PKCS#1 v1.5 signature block of source's SHA-1
// DigestInfo (00 01 FF...FF 00 DigestInfo) into b, whose length is the
// modulus size, and returns b.
func pkcs1SHA1Block(b, source []byte) []byte {
	d := sha1.Sum(source)
	t := len(sha1DigestInfo) + len(d)
	b[0], b[1] = 0, 1
	for i := 2; i < len(b)-t-1; i++ {
		b[i] = 0xff
	}
	b[len(b)-t-1] = 0
	copy(b[len(b)-t:], sha1DigestInfo)
	copy(b[len(b)-len(d):], d[:])
	return b
}

// Certificate returns the certificate; see Signer.
func (s *SDF) Certificate() *smx509.Certificate { return s.cert }

// CertNo returns the certNo; see Signer.
func (s *SDF) CertNo() string { return s.certNo }

// Concurrency returns the number of sessions; see Signer.
func (s *SDF) Concurrency() int { return s.cfg.Sessions }

// Close releases the access right, closes the sessions and, when no other
// signer uses the device, closes it. Signatures in flight are waited for
// up to the call timeout; a session stuck in a hung call is left to it,
// and so is the device: it is not closed while any call of this signer
// has not returned (it then stays open for the life of the process).
func (s *SDF) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
		clean := waitTimeout(&s.wg, s.cfg.CallTimeout)
		var closing sync.WaitGroup
		var mu sync.Mutex
	drain:
		for {
			select {
			case sess := <-s.idle:
				closing.Go(func() {
					if s.closeSession(sess) != nil {
						mu.Lock()
						clean = false
						mu.Unlock()
					}
				})
			default:
				break drain
			}
		}
		closing.Wait()
		for deadline := time.Now().Add(s.cfg.CallTimeout); s.inCalls.Load() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				clean = false
				break
			}
		}
		if s.dev != nil {
			s.dev.release(clean)
		}
	})
	return nil
}

// waitTimeout waits for wg at most d and says whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// sdfDevice is a device opened once per library and process, shared by
// the signers of its keys: GM/T 0018 libraries open a device once.
type sdfDevice struct {
	lib     sdfLib
	path    string
	timeout time.Duration
	h       uintptr
	refs    int
}

var sdfDevices = struct {
	sync.Mutex
	m map[string]*sdfDevice
}{m: map[string]*sdfDevice{}}

// acquireSDFDevice opens the library's device, or shares it when it is
// open already.
func acquireSDFDevice(ctx context.Context, lib sdfLib, path string, timeout time.Duration) (*sdfDevice, error) {
	sdfDevices.Lock()
	defer sdfDevices.Unlock()
	if d := sdfDevices.m[path]; d != nil {
		d.refs++
		return d, nil
	}
	d := &sdfDevice{lib: lib, path: path, timeout: timeout}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: SDF_OpenDevice not called: %w", ErrUnavailable, err)
	}
	code, err := boundedCall(ctx, timeout, func() uint32 { return lib.OpenDevice(&d.h) }, func(code uint32) {
		if code == 0 {
			lib.CloseDevice(d.h)
		}
	}, nil)
	if err != nil {
		return nil, &SDFError{Func: "SDF_OpenDevice", Note: err.Error(), kind: ErrUnavailable}
	}
	if code != 0 {
		e := sdfFailure("SDF_OpenDevice", code)
		e.kind = ErrUnavailable
		return nil, e
	}
	d.refs = 1
	sdfDevices.m[path] = d
	return d, nil
}

// release drops one signer's use of the device and closes it after the
// last one. A device with a call still hung in it (clean false) stays
// open for the life of the process: closing it under the call could
// break the library.
func (d *sdfDevice) release(clean bool) {
	sdfDevices.Lock()
	defer sdfDevices.Unlock()
	if !clean {
		return
	}
	if d.refs--; d.refs > 0 {
		return
	}
	delete(sdfDevices.m, d.path)
	boundedCall(context.Background(), d.timeout, func() uint32 { return d.lib.CloseDevice(d.h) }, nil, nil)
}
