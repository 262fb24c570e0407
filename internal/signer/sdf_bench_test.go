package signer

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/ceb179/ceb179/internal/signer/sdftest"
)

// instantDevice is an sdfLib whose device answers at once with a
// signature made in advance for the one source a benchmark signs. It takes
// the device out of the measurement and leaves the signer's own work per
// signature: the session pool, the digest or PKCS#1 block, the bounded
// library call, the layout and the verification against the certificate.
type instantDevice struct {
	pub []byte // ECCrefPublicKey or RSArefPublicKey
	sig []byte // ECCSignature, or the RSA result
}

func newInstantDevice(tb testing.TB, key eporttest.Key, source []byte) *instantDevice {
	v, err := signature.Sign(key.Signer, source)
	if err != nil {
		tb.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(v)
	d := &instantDevice{pub: make([]byte, sdfRSAPublicKeySize), sig: raw}
	switch pub := key.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		point, err := uncompressedPoint(key.Cert)
		if err != nil {
			tb.Fatal(err)
		}
		copy(d.pub[4+32:4+64], point[1:33])
		copy(d.pub[4+64+32:4+128], point[33:])
		d.sig = make([]byte, sdfECCSignatureSize)
		copy(d.sig[32:64], raw[:32])
		copy(d.sig[96:128], raw[32:])
	case *rsa.PublicKey:
		pub.N.FillBytes(d.pub[4 : 4+256])
		big.NewInt(int64(pub.E)).FillBytes(d.pub[4+256 : 4+512])
	}
	return d
}

func (d *instantDevice) OpenDevice(dev *uintptr) uint32           { *dev = 1; return 0 }
func (d *instantDevice) CloseDevice(uintptr) uint32               { return 0 }
func (d *instantDevice) OpenSession(_ uintptr, s *uintptr) uint32 { *s = 2; return 0 }
func (d *instantDevice) CloseSession(uintptr) uint32              { return 0 }
func (d *instantDevice) GetPrivateKeyAccessRight(uintptr, uint32, []byte) uint32 {
	return 0
}
func (d *instantDevice) ReleasePrivateKeyAccessRight(uintptr, uint32) uint32 { return 0 }
func (d *instantDevice) ExportSignPublicKeyECC(_ uintptr, _ uint32, pub []byte) uint32 {
	copy(pub, d.pub)
	return 0
}
func (d *instantDevice) ExportSignPublicKeyRSA(_ uintptr, _ uint32, pub []byte) uint32 {
	copy(pub, d.pub)
	return 0
}
func (d *instantDevice) InternalSignECC(_ uintptr, _ uint32, _, sig []byte) uint32 {
	copy(sig, d.sig)
	return 0
}
func (d *instantDevice) InternalPrivateKeyOperationRSA(_ uintptr, _ uint32, _, out []byte, n *uint32) uint32 {
	*n = uint32(copy(out, d.sig))
	return 0
}

// BenchmarkSigners measures one signature of a 2 KB sign source by the
// key-file signer (Go signs, and verifies) beside the SDF signer, with
// the SM2 and the RSA-1024 key: "sdf-overhead" is the SDF signer on a
// device that answers at once (its own cost per signature), "sdf-soft"
// the SDF signer on the soft SDF library through purego (OpenSSL signs
// in C). One goroutine signs at a time.
func BenchmarkSigners(b *testing.B) {
	source := []byte(`"sessionID":"bench"||"payExchangeInfoHead":"` + strings.Repeat("x", 2000) + `"`)
	dir := b.TempDir()
	keys := map[string]eporttest.Key{"SM2": eporttest.NewSM2Key(b, 0x0b01), "RSA": eporttest.NewRSAKey(b, 0x0b02)}
	guard, err := NewPINGuard(filepath.Join(dir, "pin-refused"))
	if err != nil {
		b.Fatal(err)
	}
	var soft *sdftest.Device
	for _, alg := range []string{"SM2", "RSA"} {
		key := keys[alg]
		certFile := filepath.Join(dir, alg+".pem")
		if err := os.WriteFile(certFile, key.CertPEM, 0o600); err != nil {
			b.Fatal(err)
		}
		run := func(name string, s Signer) {
			b.Run(name+"/"+alg, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Sign(context.Background(), source); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		ks, err := NewKeyFilePEM(key.KeyPEM, key.CertPEM)
		if err != nil {
			b.Fatal(err)
		}
		run("keyfile", ks)

		cfg := SDFConfig{Library: filepath.Join(dir, "instant-"+alg), CertFile: certFile, PIN: NewPIN("1"), Sessions: 1, Guard: guard}
		dev := newInstantDevice(b, key, source)
		s, err := openSDF(context.Background(), cfg, func(string) (sdfLib, error) { return dev, nil })
		if err != nil {
			b.Fatal(err)
		}
		run("sdf-overhead", s)
		s.Close()

		if soft == nil {
			soft = sdftest.New(b, 0x0b03, 0x0b04, sdftest.Options{})
		}
		cfg = SDFConfig{Library: soft.Library, KeyIndex: sdftest.SM2Index, CertFile: soft.SM2Cert, PIN: NewPIN(sdftest.Password), Sessions: 1, Guard: guard}
		if alg == "RSA" {
			cfg.KeyIndex, cfg.CertFile = sdftest.RSAIndex, soft.RSACert
		}
		if s, err = OpenSDF(context.Background(), cfg); err != nil {
			b.Fatal(fmt.Errorf("soft SDF: %w", err))
		}
		run("sdf-soft", s)
		s.Close()
	}
}

// BenchmarkSDFThroughput signs from many goroutines at once on the soft
// SDF library capped at 2,000 signatures a second, with eight sessions:
// ns/op is the inverse of the throughput the signer sustains (500,000
// ns/op is the cap). SM2 on the soft device is bounded by OpenSSL's SM2
// speed on the machine's cores, RSA-1024 by the cap.
func BenchmarkSDFThroughput(b *testing.B) {
	source := []byte(`"sessionID":"bench"||"payExchangeInfoHead":"` + strings.Repeat("x", 2000) + `"`)
	soft := sdftest.New(b, 0x0b05, 0x0b06, sdftest.Options{Rate: 2000})
	guard, err := NewPINGuard(filepath.Join(b.TempDir(), "pin-refused"))
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []string{"SM2", "RSA"} {
		cfg := SDFConfig{Library: soft.Library, KeyIndex: sdftest.SM2Index, CertFile: soft.SM2Cert, PIN: NewPIN(sdftest.Password), Sessions: 8, Guard: guard}
		if alg == "RSA" {
			cfg.KeyIndex, cfg.CertFile = sdftest.RSAIndex, soft.RSACert
		}
		s, err := OpenSDF(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Sign(context.Background(), source); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		s.Close()
	}
}
