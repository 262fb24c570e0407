package devstack

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/signature"
)

// receiver is an outside customs endpoint: it keeps each raw body and
// answers 10000.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	types  []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.types = append(r.types, req.Header.Get("Content-Type"))
	r.mu.Unlock()
	_, _ = io.WriteString(w, `{"code":"10000","message":"上传成功","total":0,"serviceTime":1}`)
}

func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// TestOutsideReceiverVerifiesWithOpenSSL runs the stack with a key and
// certificate made by OpenSSL and CUSTOMS_UPLOAD_URL pointing at an outside
// receiver, and checks with OpenSSL alone that what arrived is signed by
// that key.
func TestOutsideReceiverVerifiesWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	tests := []struct {
		name string
		keys [][]string
	}{
		{"ok SM2 key", [][]string{
			{"genpkey", "-algorithm", "SM2", "-out", "key.pem"},
			{"req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=card", "-days", "2", "-sm3", "-sigopt", "distid:" + signature.DefaultUID, "-out", "cert.pem"},
		}},
		{"ok RSA-1024 key", [][]string{
			{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "key.pem"},
			{"req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=card", "-days", "2", "-sha256", "-out", "cert.pem"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, args := range tt.keys {
				openssl(t, dir, args...)
			}
			openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
			rec := &receiver{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			s := startStack(t, Options{
				SignerKey: filepath.Join(dir, "key.pem"), SignerCert: filepath.Join(dir, "cert.pem"),
				EbpCode: "3301964J31", CustomsUploadURL: srv.URL + "/ceb2grab/grab/realTimeDataUpload",
			})
			sid := customssim.NewSessionID()
			if code := ask(t, s, DemoOrderMultiA, sid); code != customs.CodeSuccess {
				t.Fatalf("ack %s", code)
			}
			if req := waitState(t, s, sid, 30*time.Second); req.State != ceb179.StateAccepted {
				t.Fatalf("state %s (%s)", req.State, req.Reason)
			}
			rec.mu.Lock()
			body, ctype := rec.bodies[0], rec.types[0]
			rec.mu.Unlock()
			if ctype != customs.UploadContentType {
				t.Errorf("Content-Type %q, want %q", ctype, customs.UploadContentType)
			}
			form, err := url.ParseQuery(string(body))
			if err != nil || len(form) != 1 || len(form["payExInfoStr"]) != 1 {
				t.Fatalf("body is not a form with one payExInfoStr field: %v", err)
			}
			got, err := customs.ReadPayExInfoStr([]byte(form.Get("payExInfoStr")))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(got.SignValue)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "src"), got.SignSource(), 0o600); err != nil {
				t.Fatal(err)
			}
			if len(sig) == signature.SM2SignatureSize {
				der, err := signature.SM2RawToASN1(sig)
				if err != nil {
					t.Fatal(err)
				}
				_ = os.WriteFile(filepath.Join(dir, "sig"), der, 0o600)
				openssl(t, dir, "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "src",
					"-sigfile", "sig", "-digest", "sm3", "-pkeyopt", "distid:"+signature.DefaultUID)
			} else {
				_ = os.WriteFile(filepath.Join(dir, "sig"), sig, 0o600)
				openssl(t, dir, "dgst", "-sha1", "-verify", "pub.pem", "-signature", "sig", "src")
			}
		})
	}
}
