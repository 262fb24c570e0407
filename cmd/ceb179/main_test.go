package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/signature"
)

const (
	vectorFile  = "testdata/sm2-accepted-payExInfoStr.json"
	sm2CertFile = "testdata/sm2-accepted-cert.pem"
	rsaCertFile = "testdata/rsa-card-cert.pem"
	docFile     = "testdata/document.json"
	badDocFile  = "testdata/bad-document.json"
)

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs ceb179 in-process with args and stdin.
func runCLI(tb testing.TB, stdin []byte, args ...string) result {
	tb.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, bytes.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// specSource builds the sign source of SPEC §3 directly from the raw bytes
// of a payExInfoStr, independently of internal/customs.
func specSource(tb testing.TB, payExInfoStr []byte) []byte {
	tb.Helper()
	var v struct {
		SessionID   string          `json:"sessionID"`
		Head        json.RawMessage `json:"payExchangeInfoHead"`
		Lists       json.RawMessage `json:"payExchangeInfoLists"`
		ServiceTime string          `json:"serviceTime"`
		SignValue   string          `json:"signValue"`
	}
	if err := json.Unmarshal(payExInfoStr, &v); err != nil {
		tb.Fatal(err)
	}
	return []byte(`"sessionID":"` + v.SessionID + `"||"payExchangeInfoHead":"` + string(v.Head) +
		`"||"payExchangeInfoLists":"` + string(v.Lists) + `"||"serviceTime":"` + v.ServiceTime + `"`)
}

// oneLineError checks that stderr is one line "ceb179: ...".
func oneLineError(tb testing.TB, stderr string) {
	tb.Helper()
	if !strings.HasPrefix(stderr, "ceb179: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		tb.Errorf("stderr is not one line \"ceb179: ...\": %q", stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		tb.Errorf("stderr looks like a stack trace: %q", stderr)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{"ok --help", []string{"--help"}, 0, "Commands:", ""},
		{"ok -h", []string{"-h"}, 0, "signsource", ""},
		{"ok help sign", []string{"help", "sign"}, 0, "Usage: ceb179 sign --key KEY.pem --cert CERT.pem [FILE]", ""},
		{"fail no arguments", nil, 2, "", "Usage: ceb179 COMMAND"},
		{"fail unknown command", []string{"frobnicate"}, 2, "", `ceb179: unknown command "frobnicate"`},
		{"fail unknown top-level flag", []string{"--cert", "x"}, 2, "", `ceb179: unknown flag "--cert"`},
		{"fail help for unknown command", []string{"help", "frobnicate"}, 2, "", "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
	// Every registered command lists in --help and has its own --help.
	top := runCLI(t, nil, "--help").stdout
	for _, c := range commands() {
		t.Run("ok "+c.name+" --help", func(t *testing.T) {
			if !strings.Contains(top, "  "+c.name+" ") {
				t.Errorf("--help does not list %s", c.name)
			}
			for _, h := range []string{"--help", "-h"} {
				r := runCLI(t, nil, c.name, h)
				if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: ceb179 "+c.name) || r.stderr != "" {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %q", c.name, h, r.code, r.stdout, r.stderr)
				}
			}
		})
		t.Run("fail "+c.name+" unknown flag", func(t *testing.T) {
			r := runCLI(t, nil, c.name, "--no-such-flag")
			if r.code != 2 {
				t.Errorf("exit %d, want 2", r.code)
			}
			oneLineError(t, r.stderr)
		})
	}
}

func TestCertNo(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
		want     string
	}{
		{"ok sm2 card", []string{"certno", sm2CertFile}, nil, 0, "03000000000cde6f\n"},
		{"ok rsa card", []string{"certno", rsaCertFile}, nil, 0, "01691f7f\n"},
		{"ok stdin", []string{"certno", "-"}, readFile(t, rsaCertFile), 0, "01691f7f\n"},
		{"fail missing file", []string{"certno", "testdata/no-such.pem"}, nil, 2, ""},
		{"fail not a certificate", []string{"certno", vectorFile}, nil, 2, ""},
		{"fail no argument", []string{"certno"}, nil, 2, ""},
		{"fail two arguments", []string{"certno", sm2CertFile, rsaCertFile}, nil, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode || r.stdout != tt.want {
				t.Fatalf("exit %d stdout %q, want %d %q; stderr %q", r.code, r.stdout, tt.wantCode, tt.want, r.stderr)
			}
			if tt.wantCode != 0 {
				oneLineError(t, r.stderr)
			}
		})
	}
}

func TestSignSource(t *testing.T) {
	vector := readFile(t, vectorFile)
	want := specSource(t, vector)
	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
	}{
		{"ok file", []string{"signsource", vectorFile}, nil, 0},
		{"ok stdin", []string{"signsource"}, vector, 0},
		{"ok stdin dash", []string{"signsource", "-"}, vector, 0},
		{"fail missing file", []string{"signsource", "testdata/no-such.json"}, nil, 2},
		{"fail not json", []string{"signsource"}, []byte("payExInfoStr=%7B"), 2},
		{"fail document without signature", []string{"signsource", docFile}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantCode != 0 {
				oneLineError(t, r.stderr)
				return
			}
			if r.stdout != string(want) {
				t.Fatalf("sign source differs from the SPEC construction:\n got %q\nwant %q", r.stdout, want)
			}
			if strings.HasSuffix(r.stdout, "\n") {
				t.Fatal("sign source ends with a newline")
			}
			// The bytes are the ones the accepted signature covers.
			cert, err := signature.ParseCertificatePEM(readFile(t, sm2CertFile))
			if err != nil {
				t.Fatal(err)
			}
			var v struct{ SignValue string }
			if err := json.Unmarshal(vector, &v); err != nil {
				t.Fatal(err)
			}
			if err := signature.Verify(cert, []byte(r.stdout), v.SignValue); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	vector := string(readFile(t, vectorFile))
	replace := func(old, new string) []byte {
		t.Helper()
		if strings.Count(vector, old) != 1 {
			t.Fatalf("%q is not unique in the vector", old)
		}
		return []byte(strings.Replace(vector, old, new, 1))
	}
	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
	}{
		{"ok accepted vector", []string{"verify", "--cert", sm2CertFile, vectorFile}, nil, 0},
		{"ok stdin, flags after file", []string{"verify", "-", "--cert", sm2CertFile}, []byte(vector), 0},
		{"ok surrounding white space", []string{"verify", "--cert", sm2CertFile}, []byte("\n " + vector + "\r\n"), 0},
		{"fail sessionID changed", []string{"verify", "--cert", sm2CertFile}, replace(`"sessionID":"IHWESX-WEASLEY-20230712210643-X7E4PL"`, `"sessionID":"IHWESX-WEASLEY-20230712210643-X7E4PM"`), 1},
		{"fail head amount changed", []string{"verify", "--cert", sm2CertFile}, replace(`"totalAmount":5.0`, `"totalAmount":5.1`), 1},
		{"fail head amount re-serialised", []string{"verify", "--cert", sm2CertFile}, replace(`"totalAmount":5.0`, `"totalAmount":5`), 1},
		{"fail head raw request changed", []string{"verify", "--cert", sm2CertFile}, replace(`<mch_id>11111111</mch_id><body>`, `<mch_id>11111112</mch_id><body>`), 1},
		{"fail head escaped differently", []string{"verify", "--cert", sm2CertFile}, replace(`"payCode":"1537923071"`, `"payCode":"\u0031537923071"`), 1},
		{"fail lists changed", []string{"verify", "--cert", sm2CertFile}, replace(`shopId=453`, `shopId=454`), 1},
		{"fail serviceTime changed", []string{"verify", "--cert", sm2CertFile}, replace(`"serviceTime":"1601282210417"`, `"serviceTime":"1601282210418"`), 1},
		{"fail certNo changed", []string{"verify", "--cert", sm2CertFile}, replace(`"certNo":"03000000000cde6f"`, `"certNo":"03000000000cde6e"`), 1},
		{"fail certNo upper case", []string{"verify", "--cert", sm2CertFile}, replace(`"certNo":"03000000000cde6f"`, `"certNo":"03000000000CDE6F"`), 1},
		{"fail signValue changed", []string{"verify", "--cert", sm2CertFile}, replace(`+5rw8h5y`, `+5rw8h5z`), 1},
		{"fail signValue not base64", []string{"verify", "--cert", sm2CertFile}, replace(`+5rw8h5y`, `!5rw8h5y`), 1},
		{"fail other certificate", []string{"verify", "--cert", rsaCertFile, vectorFile}, nil, 1},
		{"fail missing input file", []string{"verify", "--cert", sm2CertFile, "testdata/no-such.json"}, nil, 2},
		{"fail empty input", []string{"verify", "--cert", sm2CertFile}, nil, 2},
		{"fail not json", []string{"verify", "--cert", sm2CertFile}, []byte("not json"), 2},
		{"fail truncated json", []string{"verify", "--cert", sm2CertFile}, []byte(vector[:len(vector)/2]), 2},
		{"fail missing signValue", []string{"verify", "--cert", sm2CertFile}, replace(`,"signValue"`, `,"signValue2"`), 2},
		{"fail unsigned document", []string{"verify", "--cert", sm2CertFile, docFile}, nil, 2},
		{"fail missing certificate file", []string{"verify", "--cert", "testdata/no-such.pem", vectorFile}, nil, 2},
		{"fail certificate not pem", []string{"verify", "--cert", vectorFile, vectorFile}, nil, 2},
		{"fail no --cert", []string{"verify", vectorFile}, nil, 2},
		{"fail two files", []string{"verify", "--cert", sm2CertFile, vectorFile, vectorFile}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantCode == 2 {
				oneLineError(t, r.stderr)
			}
			if tt.wantCode == 1 && !strings.HasPrefix(r.stderr, "ceb179: verify: ") {
				t.Errorf("no reason on stderr: %q", r.stderr)
			}
		})
	}
}

// TestVerifyEveryByte changes each letter and digit inside the values of
// sessionID, the head, the lists and serviceTime, one at a time: verify
// must never accept the result; it exits 1, or 2 where the change breaks
// the document (a key name).
func TestVerifyEveryByte(t *testing.T) {
	vector := readFile(t, vectorFile)
	end := bytes.Index(vector, []byte(`,"certNo"`))
	if end < 0 {
		t.Fatal("no certNo in vector")
	}
	rejected, unreadable := 0, 0
	for i := 0; i < end; i++ {
		c := vector[i]
		var d byte
		switch {
		case c >= '0' && c <= '8', c >= 'a' && c <= 'y', c >= 'A' && c <= 'Y':
			d = c + 1
		case c == '9':
			d = '0'
		case c == 'z', c == 'Z':
			d = c - 1
		default:
			continue
		}
		mutated := bytes.Clone(vector)
		mutated[i] = d
		r := runCLI(t, mutated, "verify", "--cert", sm2CertFile)
		switch r.code {
		case 1:
			rejected++
		case 2:
			unreadable++
			if _, err := customs.ReadPayExInfoStr(mutated); err == nil {
				t.Errorf("byte %d: exit 2 for a readable document: %s", i, r.stderr)
			}
		default:
			t.Fatalf("byte %d %q->%q: exit %d", i, c, d, r.code)
		}
	}
	if rejected < 1000 {
		t.Errorf("only %d changes rejected with exit 1 (%d unreadable)", rejected, unreadable)
	}
	t.Logf("%d changes rejected, %d unreadable", rejected, unreadable)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stdin     []byte
		wantCode  int
		wantPaths []string
	}{
		{"ok accepted vector", []string{"check", vectorFile}, nil, 0, nil},
		{"ok document", []string{"check"}, readFile(t, docFile), 0, nil},
		{"fail broken rules", []string{"check", badDocFile}, nil, 1, []string{
			"payExchangeInfoHead.guid",
			"payExchangeInfoHead.ebpCode",
			"payExchangeInfoHead.totalAmount",
			"payExchangeInfoHead.currency",
			"payExchangeInfoHead.verDept",
			"payExchangeInfoHead.payType",
			"payExchangeInfoHead.tradingTime",
			"payExchangeInfoLists[0].orderNo",
			"payExchangeInfoLists[1].goodsInfo",
			"payExchangeInfoLists[1].recpName",
		}},
		{"fail missing file", []string{"check", "testdata/no-such.json"}, nil, 2, nil},
		{"fail not json", []string{"check"}, []byte("{"), 2, nil},
		{"fail misspelt key", []string{"check"}, bytes.Replace(readFile(t, docFile), []byte("payExchangeInfoLists"), []byte("payExchangeInfoList"), 1), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if tt.wantCode == 2 {
				oneLineError(t, r.stderr)
				return
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if r.stdout == "" {
				lines = nil
			}
			got := map[string]bool{}
			for _, l := range lines {
				path, _, ok := strings.Cut(l, ": ")
				if !ok {
					t.Errorf("line without path: %q", l)
				}
				got[path] = true
			}
			for _, p := range tt.wantPaths {
				if !got[p] {
					t.Errorf("no violation for %s in:\n%s", p, r.stdout)
				}
			}
			if len(got) != len(tt.wantPaths) {
				t.Errorf("violations for %d paths, want %d:\n%s", len(got), len(tt.wantPaths), r.stdout)
			}
		})
	}
}

// --- signing with OpenSSL keys -----------------------------------------

func requireOpenSSL(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		tb.Skip("openssl not on PATH")
	}
}

func openssl(tb testing.TB, dir string, args ...string) {
	tb.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newKeyPair makes key.pem, cert.pem and pub.pem in a new directory with
// OpenSSL and returns the directory.
func newKeyPair(tb testing.TB, alg signature.Algorithm) string {
	tb.Helper()
	requireOpenSSL(tb)
	dir := tb.TempDir()
	if alg == signature.SM2SM3 {
		openssl(tb, dir, "genpkey", "-algorithm", "SM2", "-out", "key.pem")
		openssl(tb, dir, "req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=test", "-days", "2",
			"-sm3", "-sigopt", "distid:"+signature.DefaultUID, "-out", "cert.pem")
	} else {
		openssl(tb, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "key.pem")
		openssl(tb, dir, "req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=test", "-days", "2",
			"-sha256", "-out", "cert.pem")
	}
	openssl(tb, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
	return dir
}

func TestSignRoundTrip(t *testing.T) {
	requireOpenSSL(t)
	vectorSource := specSource(t, readFile(t, vectorFile))
	tests := []struct {
		name string
		alg  signature.Algorithm
	}{
		{"ok sm2", signature.SM2SM3},
		{"ok rsa", signature.RSASHA1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newKeyPair(t, tt.alg)
			key, cert := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")

			r := runCLI(t, nil, "sign", "--key", key, "--cert", cert, docFile)
			if r.code != 0 {
				t.Fatalf("sign: exit %d: %s", r.code, r.stderr)
			}
			signed := []byte(r.stdout)
			// The document is the accepted vector re-ordered and re-escaped:
			// its canonical form has the vector's exact sign source.
			if got := specSource(t, signed); !bytes.Equal(got, vectorSource) {
				t.Fatalf("canonical sign source differs from the vector's:\n got %s\nwant %s", got, vectorSource)
			}
			r = runCLI(t, nil, "certno", cert)
			wantCertNo := strings.TrimSpace(r.stdout)
			var out struct{ CertNo, SignValue string }
			if err := json.Unmarshal(signed, &out); err != nil {
				t.Fatalf("sign output is not JSON: %v", err)
			}
			if out.CertNo != wantCertNo {
				t.Errorf("certNo %q, want %q", out.CertNo, wantCertNo)
			}

			if r := runCLI(t, signed, "verify", "--cert", cert); r.code != 0 {
				t.Fatalf("verify own output: exit %d: %s", r.code, r.stderr)
			}
			r = runCLI(t, signed, "signsource")
			if r.code != 0 {
				t.Fatalf("signsource: exit %d: %s", r.code, r.stderr)
			}
			writeFile(t, filepath.Join(dir, "src"), []byte(r.stdout))
			sig, err := base64.StdEncoding.DecodeString(out.SignValue)
			if err != nil {
				t.Fatal(err)
			}
			if tt.alg == signature.SM2SM3 {
				if len(sig) != 64 {
					t.Fatalf("SM2 signature of %d bytes", len(sig))
				}
				der, err := signature.SM2RawToASN1(sig)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "sig.der"), der)
				openssl(t, dir, "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "src",
					"-sigfile", "sig.der", "-digest", "sm3", "-pkeyopt", "distid:"+signature.DefaultUID)
			} else {
				if len(sig) != 128 {
					t.Fatalf("RSA-1024 signature of %d bytes", len(sig))
				}
				writeFile(t, filepath.Join(dir, "sig"), sig)
				openssl(t, dir, "dgst", "-sha1", "-verify", "pub.pem", "-signature", "sig", "src")
			}

			// Signed by one key, verified against another certificate.
			other := newKeyPair(t, tt.alg)
			if r := runCLI(t, signed, "verify", "--cert", filepath.Join(other, "cert.pem")); r.code != 1 {
				t.Errorf("verify against another certificate: exit %d, want 1", r.code)
			}
			// A key that does not belong to the certificate is refused.
			r = runCLI(t, nil, "sign", "--key", filepath.Join(other, "key.pem"), "--cert", cert, docFile)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("sign with a foreign key: exit %d, stdout %q", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, "does not match") {
				t.Errorf("sign with a foreign key: stderr %q", r.stderr)
			}
		})
	}
}

func TestSignFailures(t *testing.T) {
	requireOpenSSL(t)
	dir := newKeyPair(t, signature.SM2SM3)
	key, cert := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	openssl(t, dir, "pkey", "-in", "key.pem", "-aes256", "-passout", "pass:secret", "-out", "enc.pem")
	tests := []struct {
		name     string
		args     []string
		stdin    []byte
		wantCode int
	}{
		{"ok stdin", []string{"sign", "--key", key, "--cert", cert}, readFile(t, docFile), 0},
		{"ok signed input is re-signed", []string{"sign", "--key", key, "--cert", cert, vectorFile}, nil, 0},
		{"ok broken rules with --no-check", []string{"sign", "--no-check", "--key", key, "--cert", cert, badDocFile}, nil, 0},
		{"fail broken rules", []string{"sign", "--key", key, "--cert", cert, badDocFile}, nil, 1},
		{"fail no --key", []string{"sign", "--cert", cert, docFile}, nil, 2},
		{"fail no --cert", []string{"sign", "--key", key, docFile}, nil, 2},
		{"fail encrypted key", []string{"sign", "--key", filepath.Join(dir, "enc.pem"), "--cert", cert, docFile}, nil, 2},
		{"fail key file is a certificate", []string{"sign", "--key", cert, "--cert", cert, docFile}, nil, 2},
		{"fail missing input", []string{"sign", "--key", key, "--cert", cert, "testdata/no-such.json"}, nil, 2},
		{"fail input not json", []string{"sign", "--key", key, "--cert", cert}, []byte("{]"), 2},
		{"fail rsa key with sm2 vector cert", []string{"sign", "--key", key, "--cert", rsaCertFile, docFile}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantCode == 0 {
				if r := runCLI(t, []byte(r.stdout), "verify", "--cert", cert); r.code != 0 {
					t.Fatalf("verify: exit %d: %s", r.code, r.stderr)
				}
				return
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty on failure: %q", r.stdout)
			}
			if tt.wantCode == 2 {
				oneLineError(t, r.stderr)
			}
			if strings.Contains(r.stderr, "PRIVATE KEY") {
				t.Errorf("stderr shows key material: %q", r.stderr)
			}
		})
	}
}

// TestBinary builds ceb179 and runs it as a process, for exit codes and
// streams as a shell sees them.
func TestBinary(t *testing.T) {
	bin := builtCommand(t)
	vector := readFile(t, vectorFile)
	tests := []struct {
		name       string
		args       []string
		stdin      []byte
		wantCode   int
		wantStdout string
	}{
		{"ok verify vector", []string{"verify", "--cert", sm2CertFile, vectorFile}, nil, 0, "ok: SM2-SM3 signature by certNo 03000000000cde6f\n"},
		{"ok certno", []string{"certno", rsaCertFile}, nil, 0, "01691f7f\n"},
		{"ok signsource", []string{"signsource"}, vector, 0, string(specSource(t, vector))},
		{"ok help", []string{"--help"}, nil, 0, ""},
		{"fail verify changed serviceTime", []string{"verify", "--cert", sm2CertFile}, bytes.Replace(vector, []byte("1601282210417"), []byte("1601282210416"), 1), 1, ""},
		{"fail verify unreadable", []string{"verify", "--cert", sm2CertFile, "testdata/no-such.json"}, nil, 2, ""},
		{"fail check", []string{"check", badDocFile}, nil, 1, ""},
		{"fail unknown command", []string{"nope"}, nil, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdin = bytes.NewReader(tt.stdin)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, errOut.String())
			}
			if tt.wantStdout != "" && out.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantStdout)
			}
			if code != 0 && !strings.HasPrefix(errOut.String(), "ceb179: ") && !strings.HasPrefix(errOut.String(), "Usage") {
				t.Errorf("stderr %q", errOut.String())
			}
		})
	}
}
