// Package sdftest builds a soft cipher machine for the tests of the SDF
// signer: a small GM/T 0018 SDF library in C over OpenSSL 3
// (testdata/softsdf.c), compiled with gcc once per test process, copied
// into each test's temporary folder and loaded by path as a vendor's
// library is. It holds an SM2 and an RSA key
// made by the test, counts the access-right calls and the wrong passwords
// it saw in a log beside it (so counts hold across processes and
// restarts), and can be told to fail with device codes, hang, spoil its
// signatures, or sign at most so many times a second.
//
// Building needs gcc and the OpenSSL 3 headers (Debian: gcc, libssl-dev).
// Without them the tests that need the library are skipped, unless
// CEB179_SOFTSDF=required (CI sets it), which makes them fail.
package sdftest

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

//go:embed testdata/softsdf.c
var source []byte

// Password is the soft device's private-key access password.
const Password = "12345678"

// Key indexes of the soft device's keys.
const (
	SM2Index = 1
	RSAIndex = 2
)

// Error codes of GM/T 0018 that tests make the device answer.
const (
	SDROK          = 0x0
	SDRUnknown     = 0x01000001
	SDRCommFail    = 0x01000003
	SDRHardFail    = 0x01000004
	SDRParDeny     = 0x01000007
	SDRKeyNotExist = 0x01000008
	SDRPrkRErr     = 0x01000018
	// GmSSLErr is what GmSSL's soft SDF answers a wrong password with: a
	// vendor code no header names.
	GmSSLErr = 0x01000100
)

// Options shape a device.
type Options struct {
	// Rate caps the signatures a second over all sessions; 0 is no cap.
	Rate float64
	// FieldSize is the ECCref field size the library writes: 64 (GM/T
	// 0018-2012, the default) or 32.
	FieldSize int
	// WrongCode is what a wrong password answers; SDR_PRKRERR when 0.
	WrongCode uint32
	// MaxWrong is how many wrong passwords in a row lock the keys
	// (default 3).
	MaxWrong int
}

// Device is a built soft SDF library with its keys.
type Device struct {
	// Dir is the library's folder: softsdf.conf, softsdf.log and
	// softsdf.ctl live there.
	Dir string
	// Library is the path of the shared library.
	Library string
	// SM2 and RSA are the keys at SM2Index and RSAIndex.
	SM2, RSA eporttest.Key
	// SM2Cert and RSACert are their certificates' PEM files.
	SM2Cert, RSACert string

	mu sync.Mutex
}

// New builds a soft SDF library in a temporary folder with a fresh SM2 key
// (certificate serial sm2Serial, which is its certNo) and RSA-1024 key
// (serial rsaSerial).
func New(tb testing.TB, sm2Serial, rsaSerial int64, o Options) *Device {
	tb.Helper()
	Require(tb)
	dir := tb.TempDir()
	d := &Device{Dir: dir, Library: filepath.Join(dir, "libsoftsdf.so")}
	lib, err := built()
	if err != nil {
		tb.Fatal(err)
	}
	// A copy per device: a library loaded from another path is another
	// device, with its own state, in this process.
	if err := os.WriteFile(d.Library, lib, 0o700); err != nil {
		tb.Fatal(err)
	}
	d.SM2 = eporttest.NewSM2Key(tb, sm2Serial)
	d.RSA = eporttest.NewRSAKey(tb, rsaSerial)
	write := func(name string, b []byte) string {
		tb.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	sm2Key, rsaKey := write("sm2.key", d.SM2.KeyPEM), write("rsa.key", d.RSA.KeyPEM)
	d.SM2Cert, d.RSACert = write("sm2.pem", d.SM2.CertPEM), write("rsa.pem", d.RSA.CertPEM)
	if o.FieldSize == 0 {
		o.FieldSize = 64
	}
	if o.WrongCode == 0 {
		o.WrongCode = SDRPrkRErr
	}
	if o.MaxWrong == 0 {
		o.MaxWrong = 3
	}
	conf := fmt.Sprintf("password %s\nserial SOFTSDF000000001\necc %d %s\nrsa %d %s\nrate %g\nfield %d\nwrongcode %#x\nmaxwrong %d\n",
		Password, SM2Index, sm2Key, RSAIndex, rsaKey, o.Rate, o.FieldSize, o.WrongCode, o.MaxWrong)
	write("softsdf.conf", []byte(conf))
	// A call left hanging by a test is let go when the test ends.
	tb.Cleanup(func() { os.Remove(filepath.Join(dir, "softsdf.ctl")) })
	return d
}

// Require skips the test when the soft library cannot be built here (no
// gcc or no OpenSSL 3 headers on a Linux machine), or fails it when
// CEB179_SOFTSDF=required.
func Require(tb testing.TB) {
	tb.Helper()
	why := ""
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		why = "the soft SDF library is built for linux/amd64 and linux/arm64 only"
	} else if _, err := exec.LookPath("gcc"); err != nil {
		why = "gcc not on PATH (Debian: apt-get install gcc libssl-dev)"
	} else if _, err := os.Stat("/usr/include/openssl/evp.h"); err != nil {
		why = "no OpenSSL 3 headers (Debian: apt-get install libssl-dev)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CEB179_SOFTSDF") == "required" {
		tb.Fatalf("soft SDF library required (CEB179_SOFTSDF=required): %s", why)
	}
	tb.Skip(why)
}

// build compiles the library once per test process, in a temporary
// folder, and returns its bytes.
var built = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "ceb179-softsdf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src, out := filepath.Join(dir, "softsdf.c"), filepath.Join(dir, "libsoftsdf.so")
	if err := os.WriteFile(src, source, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("gcc", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror",
		"-o", out, src, "-lcrypto", "-lpthread")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the soft SDF library: %v\n%s", err, b)
	}
	return os.ReadFile(out)
})

// Access is one SDF_GetPrivateKeyAccessRight call the device saw.
type Access struct {
	// Index is the key index asked for.
	Index int
	// Verdict is the device's reading of the password: ok, wrong or
	// locked.
	Verdict string
	// Password is a fingerprint of the password sent (see Fingerprint).
	Password string
	// Answer is the code the call returned (a fault may replace the
	// verdict's); -1 when the call was held by a hang.
	Answer int64
}

// Fingerprint is how the device's log names a password: FNV-1a, 32 bits,
// in hex. It keeps passwords out of the log while telling them apart.
func Fingerprint(password string) string {
	h := fnv.New32a()
	h.Write([]byte(password))
	return fmt.Sprintf("%08x", h.Sum32())
}

// Accesses returns the access-right calls in the order the device saw
// them, read from its log.
func (d *Device) Accesses(tb testing.TB) []Access {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(d.Dir, "softsdf.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var out []Access
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "access" {
			continue
		}
		a := Access{Verdict: f[2], Password: strings.TrimPrefix(f[3], "pw="), Answer: -1}
		a.Index, _ = strconv.Atoi(f[1])
		if ans := strings.TrimPrefix(f[4], "answer="); ans != "hang" {
			a.Answer, _ = strconv.ParseInt(ans, 0, 64)
		}
		out = append(out, a)
	}
	return out
}

// ClosedUnderCall reports whether the device was closed while one of its
// calls was still held by a hang, which a vendor's library might not
// survive.
func (d *Device) ClosedUnderCall(tb testing.TB) bool {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(d.Dir, "softsdf.log"))
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	return strings.Contains(string(b), "close-device-under-a-call")
}

// Counts returns how many access-right calls the device saw and how many
// of them carried a wrong password (locked keys included).
func (d *Device) Counts(tb testing.TB) (calls, wrong int) {
	tb.Helper()
	for _, a := range d.Accesses(tb) {
		calls++
		if a.Verdict != "ok" {
			wrong++
		}
	}
	return calls, wrong
}

// Fail makes the next count calls of the C function fn (all of them when
// count is 0) answer code after doing their work: an access-right call
// checks and counts the password first.
func (d *Device) Fail(tb testing.TB, fn string, code uint32, count int) {
	tb.Helper()
	line := fmt.Sprintf("fail %s %#x", fn, code)
	if count > 0 {
		line += fmt.Sprintf(" %d", count)
	}
	d.control(tb, line)
}

// Corrupt makes the next count signatures of fn (all of them when count
// is 0) come back with one bit flipped.
func (d *Device) Corrupt(tb testing.TB, fn string, count int) {
	tb.Helper()
	line := "corrupt " + fn
	if count > 0 {
		line += fmt.Sprintf(" %d", count)
	}
	d.control(tb, line)
}

// Hang makes calls of fn do their work and then block until Release.
func (d *Device) Hang(tb testing.TB, fn string) {
	tb.Helper()
	d.control(tb, "hang "+fn)
}

// Release removes every fault and hang.
func (d *Device) Release(tb testing.TB) {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(filepath.Join(d.Dir, "softsdf.ctl")); err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
}

// Reset forgets the device's log and its run of wrong passwords (a new
// device with the same keys), and removes every fault.
func (d *Device) Reset(tb testing.TB) {
	tb.Helper()
	d.Release(tb)
	for _, f := range []string{"softsdf.log", "softsdf.tries"} {
		if err := os.Remove(filepath.Join(d.Dir, f)); err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
	}
}

// control adds a line to softsdf.ctl, replacing the file at once so that
// the library never reads half of it.
func (d *Device) control(tb testing.TB, line string) {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	path := filepath.Join(d.Dir, "softsdf.ctl")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(old, line+"\n"...), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// VerifyWithOpenSSL checks signValue over source against the certificate
// certPEM with the openssl command, independently of Go: SM2 with SM3 and
// the default user id, or RSA PKCS#1 v1.5 with SHA-1.
func VerifyWithOpenSSL(tb testing.TB, certPEM, source []byte, signValue string) {
	tb.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		tb.Skip("openssl not on PATH")
	}
	cert, err := signature.ParseCertificatePEM(certPEM)
	if err != nil {
		tb.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(signValue)
	if err != nil {
		tb.Fatal(err)
	}
	alg, err := signature.AlgorithmOf(cert.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{"pkeyutl", "-verify", "-certin", "-inkey", "cert.pem", "-rawin", "-in", "source", "-sigfile", "sig"}
	if alg == signature.SM2SM3 {
		if sig, err = signature.SM2RawToASN1(sig); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "-digest", "sm3", "-pkeyopt", "distid:"+signature.DefaultUID)
	} else {
		args = append(args, "-digest", "sha1")
	}
	dir := tb.TempDir()
	for name, b := range map[string][]byte{"cert.pem": certPEM, "source": source, "sig": sig} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		tb.Fatalf("openssl does not verify the %s signature: %v\n%s", alg, err, out)
	}
}
