package signature

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// vector is the customs-accepted SM2 payload of testdata/, split into the
// parts the sign source is built from, with the JSON values kept as bytes.
type vector struct {
	SessionID   string          `json:"sessionID"`
	Head        json.RawMessage `json:"payExchangeInfoHead"`
	Lists       json.RawMessage `json:"payExchangeInfoLists"`
	ServiceTime string          `json:"serviceTime"`
	CertNo      string          `json:"certNo"`
	SignValue   string          `json:"signValue"`
}

// source builds the sign source of SPEC §3 from the parts of v.
func (v vector) source() []byte {
	var b bytes.Buffer
	b.WriteString(`"sessionID":"` + v.SessionID + `"||`)
	b.WriteString(`"payExchangeInfoHead":"`)
	b.Write(v.Head)
	b.WriteString(`"||"payExchangeInfoLists":"`)
	b.Write(v.Lists)
	b.WriteString(`"||"serviceTime":"` + v.ServiceTime + `"`)
	return b.Bytes()
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func loadVector(tb testing.TB) vector {
	tb.Helper()
	var v vector
	if err := json.Unmarshal(readFile(tb, "testdata/sm2-accepted-payExInfoStr.json"), &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

func loadCert(tb testing.TB, path string) *smx509.Certificate {
	tb.Helper()
	cert, err := ParseCertificatePEM(readFile(tb, path))
	if err != nil {
		tb.Fatalf("parse %s: %v", path, err)
	}
	return cert
}

// flip returns a copy of s with the byte at i changed.
func flip(s string, i int) string {
	b := []byte(s)
	b[i] ^= 0x01
	return string(b)
}

func TestVerifyAcceptedVector(t *testing.T) {
	v := loadVector(t)
	sm2Cert := loadCert(t, "testdata/sm2-accepted-cert.pem")
	rsaCert := loadCert(t, "testdata/rsa-card-cert.pem")
	sig, err := base64.StdEncoding.DecodeString(v.SignValue)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cert      *smx509.Certificate
		source    []byte
		signValue string
		wantErr   error
	}{
		{"ok accepted vector", sm2Cert, v.source(), v.SignValue, nil},
		{"fail sessionID changed", sm2Cert, vector{SessionID: flip(v.SessionID, 3), Head: v.Head, Lists: v.Lists, ServiceTime: v.ServiceTime}.source(), v.SignValue, ErrMismatch},
		{"fail head changed", sm2Cert, vector{SessionID: v.SessionID, Head: []byte(flip(string(v.Head), 200)), Lists: v.Lists, ServiceTime: v.ServiceTime}.source(), v.SignValue, ErrMismatch},
		{"fail head re-serialised amount", sm2Cert, []byte(strings.Replace(string(v.source()), `"totalAmount":5.0`, `"totalAmount":5`, 1)), v.SignValue, ErrMismatch},
		{"fail lists changed", sm2Cert, vector{SessionID: v.SessionID, Head: v.Head, Lists: []byte(flip(string(v.Lists), 30)), ServiceTime: v.ServiceTime}.source(), v.SignValue, ErrMismatch},
		{"fail serviceTime changed", sm2Cert, vector{SessionID: v.SessionID, Head: v.Head, Lists: v.Lists, ServiceTime: flip(v.ServiceTime, 12)}.source(), v.SignValue, ErrMismatch},
		{"fail serviceTime unquoted", sm2Cert, []byte(strings.Replace(string(v.source()), `"serviceTime":"`+v.ServiceTime+`"`, `"serviceTime":`+v.ServiceTime, 1)), v.SignValue, ErrMismatch},
		{"fail trailing newline", sm2Cert, append(v.source(), '\n'), v.SignValue, ErrMismatch},
		{"fail signature byte changed", sm2Cert, v.source(), base64.StdEncoding.EncodeToString([]byte(flip(string(sig), 40))), ErrMismatch},
		{"fail signature truncated", sm2Cert, v.source(), base64.StdEncoding.EncodeToString(sig[:63]), ErrLength},
		{"fail signature as DER", sm2Cert, v.source(), derOf(t, sig), ErrLength},
		{"fail bad base64", sm2Cert, v.source(), "not base64!", ErrEncoding},
		{"fail empty signValue", sm2Cert, v.source(), "", ErrLength},
		{"fail wrong certificate", rsaCert, v.source(), v.SignValue, ErrLength},
		{"fail no certificate", nil, v.source(), v.SignValue, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.cert, tt.source, tt.signValue)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func derOf(tb testing.TB, raw []byte) string {
	tb.Helper()
	der, err := SM2RawToASN1(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestCertNo(t *testing.T) {
	tests := []struct {
		name string
		path string
		want string
		alg  Algorithm
	}{
		{"ok sm2 card", "testdata/sm2-accepted-cert.pem", "03000000000cde6f", SM2SM3},
		{"ok rsa card", "testdata/rsa-card-cert.pem", "01691f7f", RSASHA1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := loadCert(t, tt.path)
			if got := CertNo(cert); got != tt.want {
				t.Errorf("CertNo = %q, want %q", got, tt.want)
			}
			alg, err := AlgorithmOf(cert.PublicKey)
			if err != nil || alg != tt.alg {
				t.Errorf("AlgorithmOf = %v, %v; want %v", alg, err, tt.alg)
			}
		})
	}
	if got := CertNo(nil); got != "" {
		t.Errorf("CertNo(nil) = %q", got)
	}
}

func TestParseCertificatePEM(t *testing.T) {
	pemBytes := readFile(t, "testdata/sm2-accepted-cert.pem")
	cert := loadCert(t, "testdata/sm2-accepted-cert.pem")
	bare := base64.StdEncoding.EncodeToString(cert.Raw)
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"ok pem", pemBytes, ""},
		{"ok pem after other blocks", append([]byte("-----BEGIN SM2 PARAMETERS-----\nBggqgRzPVQGCLQ==\n-----END SM2 PARAMETERS-----\n"), pemBytes...), ""},
		{"ok bare base64", []byte(bare + "\n"), ""},
		{"ok der", cert.Raw, ""},
		{"fail empty", nil, "empty"},
		{"fail key only", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "no CERTIFICATE block"},
		{"fail garbage", []byte("hello"), "no PEM certificate"},
		{"fail truncated der", cert.Raw[:100], "parse certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCertificatePEM(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(cert) {
				t.Fatal("parsed a different certificate")
			}
		})
	}
}

func TestSM2Conversions(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
	}{
		{"ok high bits", bytes.Repeat([]byte{0xff}, 64)},
		{"ok leading zeros", append(append(make([]byte, 31), 1), append(make([]byte, 30), 2, 3)...)},
		{"ok mixed", append(bytes.Repeat([]byte{0x7f}, 32), bytes.Repeat([]byte{0x80}, 32)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := SM2RawToASN1(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			back, err := SM2ASN1ToRaw(der)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, tt.raw) {
				t.Fatalf("round trip = %x, want %x", back, tt.raw)
			}
		})
	}
	fails := []struct {
		name string
		der  []byte
	}{
		{"fail not der", []byte{1, 2, 3}},
		{"fail trailing data", append(mustDER(t, bytes.Repeat([]byte{1}, 64)), 0)},
		{"fail r too long", []byte{0x30, 0x26, 0x02, 0x21, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01}},
		{"fail negative s", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0xff}},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			if raw, err := SM2ASN1ToRaw(tt.der); err == nil {
				t.Fatalf("SM2ASN1ToRaw = %x, want error", raw)
			}
		})
	}
	if _, err := SM2RawToASN1(make([]byte, 63)); !errors.Is(err, ErrLength) {
		t.Errorf("SM2RawToASN1(63 bytes) error = %v, want ErrLength", err)
	}
	if _, err := SM2RawToASN1(make([]byte, 64)); err == nil {
		t.Error("SM2RawToASN1(zeros) succeeded")
	}
}

func mustDER(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	der, err := SM2RawToASN1(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestSignVerifyGoKeys(t *testing.T) {
	sm2Key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	source := loadVector(t).source()
	tests := []struct {
		name    string
		key     crypto.Signer
		sigLen  int
		wantErr error
	}{
		{"ok sm2", sm2Key, 64, nil},
		{"ok sm2 as ecdsa key", &sm2Key.PrivateKey, 64, nil},
		{"ok rsa 1024", rsaKey, 128, nil},
		{"fail ed25519", ed25519.NewKeyFromSeed(make([]byte, 32)), 0, ErrUnsupportedKey},
		{"fail nil key", nil, 0, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv, err := Sign(tt.key, source)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Sign error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(sv)
			if err != nil || len(sig) != tt.sigLen {
				t.Fatalf("signValue decodes to %d bytes (%v), want %d", len(sig), err, tt.sigLen)
			}
			if err := VerifyPublicKey(tt.key.Public(), source, sv); err != nil {
				t.Fatalf("VerifyPublicKey: %v", err)
			}
			if err := VerifyPublicKey(tt.key.Public(), source[1:], sv); !errors.Is(err, ErrMismatch) {
				t.Fatalf("VerifyPublicKey(changed source) = %v, want ErrMismatch", err)
			}
		})
	}
}

// ignoringSigner is an SM2 crypto.Signer that ignores the SM2 options and
// signs the message as if it were a digest, as a careless HSM adapter would.
type ignoringSigner struct{ key *sm2.PrivateKey }

func (s ignoringSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s ignoringSigner) Sign(r io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	return sm2.SignASN1(r, s.key, msg[:32], nil)
}

func TestSignRejectsWrongSigner(t *testing.T) {
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(ignoringSigner{key}, loadVector(t).source()); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Sign error = %v, want ErrMismatch", err)
	}
}

// --- OpenSSL interoperability -------------------------------------------

// openssl runs the openssl command in dir and fails the test on error.
func openssl(tb testing.TB, dir string, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func requireOpenSSL(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		tb.Skip("openssl not on PATH")
	}
}

// keyPair is an OpenSSL-generated key with its self-signed certificate.
type keyPair struct {
	dir            string
	key, cert, pub string // file names in dir
	signer         crypto.Signer
	certificate    *smx509.Certificate
	alg            Algorithm
}

func newOpenSSLPair(tb testing.TB, alg Algorithm) keyPair {
	tb.Helper()
	requireOpenSSL(tb)
	dir := tb.TempDir()
	p := keyPair{dir: dir, key: "key.pem", cert: "cert.pem", pub: "pub.pem", alg: alg}
	switch alg {
	case SM2SM3:
		openssl(tb, dir, "genpkey", "-algorithm", "SM2", "-out", p.key)
		openssl(tb, dir, "req", "-x509", "-new", "-key", p.key, "-subj", "/CN=test", "-days", "2",
			"-sm3", "-sigopt", "distid:"+DefaultUID, "-out", p.cert)
	case RSASHA1:
		openssl(tb, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", p.key)
		openssl(tb, dir, "req", "-x509", "-new", "-key", p.key, "-subj", "/CN=test", "-days", "2",
			"-sha256", "-out", p.cert)
	}
	openssl(tb, dir, "pkey", "-in", p.key, "-pubout", "-out", p.pub)
	var err error
	if p.signer, err = ParsePrivateKeyPEM(readFile(tb, filepath.Join(dir, p.key))); err != nil {
		tb.Fatal(err)
	}
	p.certificate = loadCert(tb, filepath.Join(dir, p.cert))
	return p
}

// opensslVerify checks signValue over source with openssl, from the public
// key file alone.
func (p keyPair) opensslVerify(tb testing.TB, source []byte, signValue string) {
	tb.Helper()
	sig, err := base64.StdEncoding.DecodeString(signValue)
	if err != nil {
		tb.Fatal(err)
	}
	write(tb, filepath.Join(p.dir, "src"), source)
	switch p.alg {
	case SM2SM3:
		write(tb, filepath.Join(p.dir, "sig.der"), mustDER(tb, sig))
		openssl(tb, p.dir, "pkeyutl", "-verify", "-pubin", "-inkey", p.pub, "-rawin", "-in", "src",
			"-sigfile", "sig.der", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID)
	case RSASHA1:
		write(tb, filepath.Join(p.dir, "sig"), sig)
		openssl(tb, p.dir, "dgst", "-sha1", "-verify", p.pub, "-signature", "sig", "src")
	}
}

// opensslSign signs source with openssl and returns the signValue.
func (p keyPair) opensslSign(tb testing.TB, source []byte) string {
	tb.Helper()
	write(tb, filepath.Join(p.dir, "src"), source)
	switch p.alg {
	case SM2SM3:
		openssl(tb, p.dir, "pkeyutl", "-sign", "-inkey", p.key, "-rawin", "-in", "src",
			"-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID, "-out", "osig.der")
		raw, err := SM2ASN1ToRaw(readFile(tb, filepath.Join(p.dir, "osig.der")))
		if err != nil {
			tb.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(raw)
	default:
		openssl(tb, p.dir, "dgst", "-sha1", "-sign", p.key, "-out", "osig", "src")
		return base64.StdEncoding.EncodeToString(readFile(tb, filepath.Join(p.dir, "osig")))
	}
}

func write(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func TestOpenSSLInterop(t *testing.T) {
	requireOpenSSL(t)
	source := loadVector(t).source()
	tests := []struct {
		name string
		alg  Algorithm
	}{
		{"ok sm2", SM2SM3},
		{"ok rsa", RSASHA1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newOpenSSLPair(t, tt.alg)
			if err := MatchesKey(p.certificate, p.signer); err != nil {
				t.Fatalf("MatchesKey: %v", err)
			}
			// Ours, checked by OpenSSL; several times, so that short r or s
			// (left padding) gets exercised now and then.
			for range 5 {
				sv, err := Sign(p.signer, source)
				if err != nil {
					t.Fatal(err)
				}
				p.opensslVerify(t, source, sv)
				if err := Verify(p.certificate, source, sv); err != nil {
					t.Fatalf("Verify own signature: %v", err)
				}
			}
			// OpenSSL's, checked by Verify.
			sv := p.opensslSign(t, source)
			if err := Verify(p.certificate, source, sv); err != nil {
				t.Fatalf("Verify openssl signature: %v", err)
			}
			if err := Verify(p.certificate, append(source, ' '), sv); !errors.Is(err, ErrMismatch) {
				t.Fatalf("Verify changed source = %v, want ErrMismatch", err)
			}
		})
	}
}

func TestMatchesKey(t *testing.T) {
	requireOpenSSL(t)
	sm2a := newOpenSSLPair(t, SM2SM3)
	sm2b := newOpenSSLPair(t, SM2SM3)
	rsaa := newOpenSSLPair(t, RSASHA1)
	rsab := newOpenSSLPair(t, RSASHA1)
	vectorCert := loadCert(t, "testdata/sm2-accepted-cert.pem")
	tests := []struct {
		name    string
		cert    *smx509.Certificate
		key     crypto.Signer
		wantErr error
	}{
		{"ok sm2", sm2a.certificate, sm2a.signer, nil},
		{"ok rsa", rsab.certificate, rsab.signer, nil},
		{"fail other sm2 key", sm2a.certificate, sm2b.signer, ErrKeyMismatch},
		{"fail other rsa key", rsaa.certificate, rsab.signer, ErrKeyMismatch},
		{"fail rsa key sm2 cert", vectorCert, rsaa.signer, ErrKeyMismatch},
		{"fail sm2 key rsa cert", rsaa.certificate, sm2a.signer, ErrKeyMismatch},
		{"fail ed25519 key", sm2a.certificate, ed25519.NewKeyFromSeed(make([]byte, 32)), ErrUnsupportedKey},
		{"fail nil key", sm2a.certificate, nil, ErrKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := MatchesKey(tt.cert, tt.key)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("MatchesKey = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	openssl(t, dir, "genpkey", "-algorithm", "SM2", "-out", "sm2.pem")
	openssl(t, dir, "ec", "-in", "sm2.pem", "-out", "sm2-sec1.pem")
	openssl(t, dir, "ecparam", "-name", "SM2", "-genkey", "-out", "sm2-params.pem")
	openssl(t, dir, "pkey", "-in", "sm2.pem", "-aes256", "-passout", "pass:secret", "-out", "sm2-enc.pem")
	openssl(t, dir, "ec", "-in", "sm2.pem", "-aes256", "-passout", "pass:secret", "-out", "sm2-sec1-enc.pem")
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa.pem")
	openssl(t, dir, "rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa-pkcs1.pem")
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "p256.pem")
	openssl(t, dir, "ec", "-in", "p256.pem", "-out", "p256-sec1.pem")
	openssl(t, dir, "genpkey", "-algorithm", "ED25519", "-out", "ed25519.pem")
	sm2Sec1 := readFile(t, filepath.Join(dir, "sm2-sec1.pem"))

	tests := []struct {
		name    string
		in      []byte
		want    Algorithm
		wantErr error // nil with want == UnknownAlgorithm: any error
	}{
		{"ok sm2 pkcs8", readFile(t, filepath.Join(dir, "sm2.pem")), SM2SM3, nil},
		{"ok sm2 sec1", sm2Sec1, SM2SM3, nil},
		{"ok sm2 sec1 as EC PRIVATE KEY", bytes.ReplaceAll(sm2Sec1, []byte("SM2 PRIVATE KEY"), []byte("EC PRIVATE KEY")), SM2SM3, nil},
		{"ok sm2 after parameters", readFile(t, filepath.Join(dir, "sm2-params.pem")), SM2SM3, nil},
		{"ok rsa pkcs8", readFile(t, filepath.Join(dir, "rsa.pem")), RSASHA1, nil},
		{"ok rsa pkcs1", readFile(t, filepath.Join(dir, "rsa-pkcs1.pem")), RSASHA1, nil},
		{"fail encrypted pkcs8", readFile(t, filepath.Join(dir, "sm2-enc.pem")), UnknownAlgorithm, ErrEncryptedKey},
		{"fail encrypted sec1", readFile(t, filepath.Join(dir, "sm2-sec1-enc.pem")), UnknownAlgorithm, ErrEncryptedKey},
		{"fail p256 pkcs8", readFile(t, filepath.Join(dir, "p256.pem")), UnknownAlgorithm, ErrUnsupportedKey},
		{"fail p256 sec1", readFile(t, filepath.Join(dir, "p256-sec1.pem")), UnknownAlgorithm, ErrUnsupportedKey},
		{"fail ed25519", readFile(t, filepath.Join(dir, "ed25519.pem")), UnknownAlgorithm, ErrUnsupportedKey},
		{"fail certificate only", readFile(t, "testdata/sm2-accepted-cert.pem"), UnknownAlgorithm, nil},
		{"fail not pem", []byte("hello"), UnknownAlgorithm, nil},
		{"fail corrupt key", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), UnknownAlgorithm, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParsePrivateKeyPEM(tt.in)
			if tt.want == UnknownAlgorithm {
				if err == nil {
					t.Fatalf("ParsePrivateKeyPEM = %T, want error", key)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg, err := AlgorithmOf(key.Public()); alg != tt.want {
				t.Fatalf("AlgorithmOf = %v (%v), want %v", alg, err, tt.want)
			}
			if _, err := Sign(key, []byte("x")); err != nil {
				t.Fatalf("Sign: %v", err)
			}
		})
	}
}
