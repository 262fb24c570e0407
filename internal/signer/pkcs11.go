//go:build cgo

package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"github.com/miekg/pkcs11"
)

// p11API is the part of a PKCS#11 module the signer uses; *pkcs11.Ctx
// implements it. It is the seam between the signer and the C library.
type p11API interface {
	Initialize(...pkcs11.InitializeOption) error
	Finalize() error
	Destroy()
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	Login(sh pkcs11.SessionHandle, userType uint, pin string) error
	Logout(sh pkcs11.SessionHandle) error
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
	SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
}

var _ p11API = (*pkcs11.Ctx)(nil)

// modules shares one initialised module per library path: PKCS#11 is
// initialised once per process, and finalising it under another signer's
// feet would break that signer.
var modules = struct {
	sync.Mutex
	m map[string]*moduleRef
}{m: map[string]*moduleRef{}}

type moduleRef struct {
	api  p11API
	refs int
}

func acquireModule(path string) (p11API, error) {
	modules.Lock()
	defer modules.Unlock()
	if r := modules.m[path]; r != nil {
		r.refs++
		return r.api, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w: cannot load PKCS#11 module %s", ErrUnavailable, path)
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("%w: initialise PKCS#11 module %s: %w", ErrUnavailable, path, err)
	}
	modules.m[path] = &moduleRef{api: ctx, refs: 1}
	return ctx, nil
}

func releaseModule(path string) {
	modules.Lock()
	defer modules.Unlock()
	r := modules.m[path]
	if r == nil {
		return
	}
	if r.refs--; r.refs == 0 {
		_ = r.api.Finalize()
		r.api.Destroy()
		delete(modules.m, path)
	}
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// classifyP11 maps a PKCS#11 error to ErrPINRefused, ErrUnavailable or
// ErrDevice.
func classifyP11(op string, err error) error {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("%w: %s: %w", ErrDevice, op, err)
	}
	switch uint(e) {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED:
		return fmt.Errorf("%w: %s: %w", ErrPINRefused, op, err)
	case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrDevice, op, err)
}

// classifyLogin reads a failed login, which carried the PIN. As for the
// E-Port card the reading is the safe one: the PIN codes are a refusal; a
// known device or session error left the PIN unchecked; every other code
// (CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR, a vendor's own) may be a wrong
// PIN the token counted: a strike.
func classifyLogin(err error) (PINResult, error) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		switch uint(e) {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
			pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED:
			return PINRefused, fmt.Errorf("%w: login: %w", ErrPINRefused, err)
		case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_ERROR,
			pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_HOST_MEMORY, pkcs11.CKR_SESSION_HANDLE_INVALID,
			pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
			return PINDeviceCode, fmt.Errorf("%w: login: %w", ErrUnavailable, err)
		}
	}
	return PINUnknown, fmt.Errorf("%w: login: %w", ErrDevice, err)
}

// p11Key is a crypto.Signer over a private key object on a token, with a
// pool of sessions (one signature per session at a time).
type p11Key struct {
	api      p11API
	key      pkcs11.ObjectHandle
	pub      crypto.PublicKey
	sessions chan pkcs11.SessionHandle
	n        int
	done     chan struct{} // closed by Close
	sm2Mech  uint
	sm2Input string
}

// OpenPKCS11 logs in to the token and returns a Signer over the key. RSA
// keys sign PKCS#1 v1.5 over SHA-1 (CKM_RSA_PKCS over the DigestInfo);
// SM2 keys sign with cfg.SM2Mechanism. The PIN goes through cfg.Guard: a
// refused PIN gives ErrPINRefused, a login without a usable answer
// ErrPINStruck. Every call into the module is bounded: the PIN-free ones
// by ctx, the login by cfg.CallTimeout (a stop does not cut it short, so
// that an answer on its way is heard); a call that does not return in
// time is abandoned to finish alone, and an abandoned login is a strike.
func OpenPKCS11(ctx context.Context, cfg PKCS11Config) (*KeySigner, error) {
	if cfg.Module == "" {
		return nil, errors.New("pkcs11: no module path")
	}
	if cfg.KeyLabel == "" && cfg.KeyID == "" {
		return nil, errors.New("pkcs11: set keyLabel or keyID")
	}
	if cfg.Guard == nil {
		return nil, errors.New("pkcs11: no PIN guard (a PKCS#11 signer needs the machine's PIN guard)")
	}
	cfg = cfg.withDefaults()
	var inflight sync.WaitGroup
	var load sync.Mutex
	gaveUp := false
	api, err := aside(ctx, &inflight, func() (p11API, error) {
		api, err := acquireModule(cfg.Module)
		load.Lock()
		defer load.Unlock()
		if err == nil && gaveUp {
			// Loaded after the caller gave up: let it go. (Loaded just
			// as it gave up, it stays loaded, which does no harm.)
			releaseModule(cfg.Module)
		}
		return api, err
	})
	if err != nil {
		load.Lock()
		gaveUp = true
		load.Unlock()
		return nil, err
	}
	k, cert, err := openToken(ctx, api, cfg, &inflight)
	if err != nil {
		// Once the calls in flight are done (an abandoned one may still
		// run in the module), its sessions are closed, then the module
		// let go: never under a running call.
		go func() {
			inflight.Wait()
			k.closeSessions()
			releaseModule(cfg.Module)
		}()
		return nil, err
	}
	closer := func() error {
		close(k.done)
		// Take every session back, waiting for signatures in flight at
		// most the call timeout; a hung device's session is abandoned,
		// and the module then stays loaded.
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			timeout := time.After(cfg.CallTimeout)
			first := true
			for range k.n {
				select {
				case sh := <-k.sessions:
					if first {
						_ = api.Logout(sh)
						first = false
					}
					_ = api.CloseSession(sh)
				case <-timeout:
					return
				}
			}
			releaseModule(cfg.Module)
		}()
		select {
		case <-finished:
		case <-time.After(cfg.CallTimeout):
		}
		return nil
	}
	s, err := NewKeySigner(k, cert, cfg.Concurrency, closer)
	if err != nil {
		closer()
		return nil, err
	}
	return s, nil
}

// aside runs f in a goroutine counted in inflight and waits for it until
// ctx ends. A call still running then is abandoned: it finishes alone,
// and inflight tells when.
func aside[T any](ctx context.Context, inflight *sync.WaitGroup, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	inflight.Go(func() {
		v, err := f()
		ch <- result{v, err}
	})
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%w: pkcs11: the module did not answer: %w", ErrUnavailable, ctx.Err())
	}
}

// openToken opens the sessions, logs in through the guard and finds the
// key and its certificate. On an error it returns the key with the
// sessions it opened, for the caller to close once the calls in flight
// (inflight) are done.
func openToken(ctx context.Context, api p11API, cfg PKCS11Config, inflight *sync.WaitGroup) (*p11Key, *smx509.Certificate, error) {
	k := &p11Key{
		api: api, sessions: make(chan pkcs11.SessionHandle, cfg.Concurrency), done: make(chan struct{}),
		sm2Mech: cfg.SM2Mechanism, sm2Input: cfg.SM2Input,
	}
	fail := func(err error) (*p11Key, *smx509.Certificate, error) {
		return k, nil, err
	}
	// The PIN-free part: the slot, the token and the sessions.
	var slot uint
	var info pkcs11.TokenInfo
	_, err := aside(ctx, inflight, func() (struct{}, error) {
		var err error
		if slot, err = findSlot(api, cfg); err != nil {
			return struct{}{}, err
		}
		if info, err = api.GetTokenInfo(slot); err != nil {
			return struct{}{}, classifyP11("token info", err)
		}
		for range cfg.Concurrency {
			sh, err := api.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
			if err != nil {
				return struct{}{}, classifyP11("open session", err)
			}
			k.sessions <- sh
			k.n++
		}
		return struct{}{}, nil
	})
	if err != nil {
		return fail(err)
	}
	sh := <-k.sessions
	k.sessions <- sh
	card := Card{ID: cfg.tokenCard(info.SerialNumber, info.Label, slot), Signer: cfg.Name, Check: func(ctx context.Context) error {
		_, err := aside(ctx, inflight, func() (pkcs11.TokenInfo, error) { return api.GetTokenInfo(slot) })
		return err
	}}
	err = cfg.Guard.Do(ctx, card, cfg.PIN, func(ctx context.Context, pin PIN) (PINResult, error) {
		// The PIN is on its way: only the call timeout ends the wait.
		wait, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.CallTimeout)
		defer cancel()
		_, err := aside(wait, inflight, func() (struct{}, error) {
			return struct{}{}, api.Login(sh, pkcs11.CKU_USER, pin.Reveal())
		})
		switch {
		case wait.Err() != nil:
			return PINUnknown, fmt.Errorf("%w: login: no answer within %s; the call was abandoned", ErrUnavailable, cfg.CallTimeout)
		case err == nil || isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
			return PINAccepted, nil
		}
		return classifyLogin(err)
	})
	if err != nil {
		return fail(err)
	}
	// The key and its certificate.
	var cert *smx509.Certificate
	_, err = aside(ctx, inflight, func() (struct{}, error) {
		var match []*pkcs11.Attribute
		var err error
		if k.key, match, err = findKey(api, sh, cfg); err != nil {
			return struct{}{}, err
		}
		if cfg.CertFile != "" {
			cert, err = readCertFile(cfg.CertFile)
		} else {
			cert, err = tokenCert(api, sh, match)
		}
		return struct{}{}, err
	})
	if err != nil {
		return fail(err)
	}
	k.pub = cert.PublicKey
	if alg, _ := signature.AlgorithmOf(k.pub); alg == signature.SM2SM3 && k.sm2Mech == 0 {
		return fail(errors.New("pkcs11: the key is SM2; set sm2Mechanism to the vendor's SM2 mechanism"))
	}
	return k, cert, nil
}

// closeSessions closes the sessions the key holds; the calls that used
// them must be done.
func (k *p11Key) closeSessions() {
	for range k.n {
		_ = k.api.CloseSession(<-k.sessions)
	}
}

// readCertFile reads the PEM certificate at path.
func readCertFile(path string) (*smx509.Certificate, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: read certificate: %w", err)
	}
	return signature.ParseCertificatePEM(pemBytes)
}

// findKey finds the one private key the configuration's label and id
// match, and returns it with those label and id attributes.
func findKey(api p11API, sh pkcs11.SessionHandle, cfg PKCS11Config) (pkcs11.ObjectHandle, []*pkcs11.Attribute, error) {
	var match []*pkcs11.Attribute
	if cfg.KeyLabel != "" {
		match = append(match, pkcs11.NewAttribute(pkcs11.CKA_LABEL, cfg.KeyLabel))
	}
	if cfg.KeyID != "" {
		id, err := hex.DecodeString(cfg.KeyID)
		if err != nil {
			return 0, nil, fmt.Errorf("pkcs11: keyID is not hex: %w", err)
		}
		match = append(match, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	tmpl := append([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}, match...)
	keys, err := findObjects(api, sh, tmpl)
	if err != nil {
		return 0, nil, err
	}
	if len(keys) != 1 {
		return 0, nil, fmt.Errorf("pkcs11: %d private keys match label %q id %q, want 1", len(keys), cfg.KeyLabel, cfg.KeyID)
	}
	return keys[0], match, nil
}

// tokenCert reads the one certificate on the token that the key's label
// and id attributes (match) name.
func tokenCert(api p11API, sh pkcs11.SessionHandle, match []*pkcs11.Attribute) (*smx509.Certificate, error) {
	tmpl := append([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE)}, match...)
	certs, err := findObjects(api, sh, tmpl)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("pkcs11: %d certificates match the key's label/id, want 1 (or set certFile)", len(certs))
	}
	attrs, err := api.GetAttributeValue(sh, certs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, classifyP11("read certificate", err)
	}
	cert, err := smx509.ParseCertificate(attrs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: parse certificate: %w", err)
	}
	return cert, nil
}

func findSlot(api p11API, cfg PKCS11Config) (uint, error) {
	if cfg.TokenLabel == "" {
		if cfg.Slot == nil {
			return 0, errors.New("pkcs11: set tokenLabel or slot")
		}
		return *cfg.Slot, nil
	}
	slots, err := api.GetSlotList(true)
	if err != nil {
		return 0, classifyP11("list slots", err)
	}
	for _, s := range slots {
		ti, err := api.GetTokenInfo(s)
		if err == nil && ti.Label == cfg.TokenLabel {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: pkcs11: no token labelled %q", ErrUnavailable, cfg.TokenLabel)
}

func findObjects(api p11API, sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := api.FindObjectsInit(sh, tmpl); err != nil {
		return nil, classifyP11("find objects", err)
	}
	objs, _, err := api.FindObjects(sh, 4)
	if ferr := api.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, classifyP11("find objects", err)
	}
	return objs, nil
}

// Public returns the key's public key.
func (k *p11Key) Public() crypto.PublicKey { return k.pub }

// Sign signs on the token. For RSA, digest is a SHA-1 digest (opts
// crypto.SHA1). For SM2, opts must be an *sm2.SM2SignerOption with
// ForceGMSign and digest is the message; the result is ASN.1 DER, as
// package signature expects of an SM2 crypto.Signer.
func (k *p11Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var (
		mech  *pkcs11.Mechanism
		input []byte
		isSM2 bool
	)
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if opts == nil || opts.HashFunc() != crypto.SHA1 || len(digest) != 20 {
			return nil, errors.New("pkcs11: RSA keys sign SHA-1 digests only")
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		input = append(append([]byte{}, sha1DigestInfo...), digest...)
	default:
		o, ok := opts.(*sm2.SM2SignerOption)
		if !ok || !o.ForceGMSign {
			return nil, errors.New("pkcs11: SM2 keys sign messages with an SM2 signer option")
		}
		isSM2 = true
		mech = pkcs11.NewMechanism(k.sm2Mech, nil)
		input = digest
		if k.sm2Input == "digest" {
			ecPub, ok := pub.(*ecdsa.PublicKey)
			if !ok {
				return nil, errors.New("pkcs11: not an SM2 public key")
			}
			za, err := sm2.CalculateZA(ecPub, o.UID)
			if err != nil {
				return nil, err
			}
			h := sm3.New()
			h.Write(za)
			h.Write(digest)
			input = h.Sum(nil)
		}
	}
	var sh pkcs11.SessionHandle
	select {
	case sh = <-k.sessions:
	case <-k.done:
		return nil, fmt.Errorf("%w: pkcs11 signer closed", ErrUnavailable)
	}
	defer func() { k.sessions <- sh }()
	if err := k.api.SignInit(sh, []*pkcs11.Mechanism{mech}, k.key); err != nil {
		return nil, classifyP11("sign init", err)
	}
	sig, err := k.api.Sign(sh, input)
	if err != nil {
		return nil, classifyP11("sign", err)
	}
	if isSM2 && len(sig) == signature.SM2SignatureSize {
		return signature.SM2RawToASN1(sig)
	}
	return sig, nil
}
