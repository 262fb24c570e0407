package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dev/devcert"
	"github.com/ceb179/ceb179/internal/signature"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// uploadingPlatform answers 10000 and, when upload is set, uploads signed
// data for each requested order to the simulator at simAddr.
func uploadingPlatform(t *testing.T, card *devcert.Pair, simAddr string, upload bool) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		var open customs.OpenReq
		_ = json.Unmarshal([]byte(r.PostForm.Get("openReq")), &open)
		_, _ = io.WriteString(w, `{"code":"10000","message":"","serviceTime":1}`)
		if !upload {
			return
		}
		go func() {
			head, _ := customs.MarshalHead(customs.Head{GUID: "A1B2C3D4-0000-5000-8000-000000000001", InitalRequest: "req", InitalResponse: "resp",
				EbpCode: "EBP1", PayCode: "PAY1", PayTransactionID: "T1", TotalAmount: "1.00", Currency: "142", VerDept: "3", TradingTime: "20240101120000"})
			lists, _ := customs.MarshalLists([]customs.Order{{OrderNo: open.OrderNo, GoodsInfo: []customs.Goods{{Gname: "g", ItemLink: "http://x/?a=1&b=2"}}, RecpAccount: "acc", RecpName: "name"}})
			u := customs.Unsigned{SessionID: open.SessionID, Head: head, Lists: lists, ServiceTime: "1700000000000"}
			sig, _ := signature.Sign(card.Key, u.SignSource())
			resp, err := http.Post("http://"+simAddr+customssim.UploadPath, customs.UploadContentType, strings.NewReader(string(customs.EncodeUploadForm(u.PayExInfoStr(card.CertNo(), sig)))))
			if err == nil {
				resp.Body.Close()
			}
		}()
	}))
}

func TestCustomsSimRehearsal(t *testing.T) {
	card, err := devcert.Generate(devcert.SM2, "card")
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "card.crt")
	writeFile(t, certFile, card.CertPEM)

	tests := []struct {
		name     string
		upload   bool
		wantCode int
		wantOut  string
	}{
		{"ok every upload arrives signed", true, exitOK, "rehearsal PASSED: 2 of 2"},
		{"fail no upload arrives", false, exitFail, "rehearsal FAILED: 0 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			plat := uploadingPlatform(t, card, addr, tt.upload)
			defer plat.Close()
			r := runCLI(t, nil, "customs-sim", "--listen", addr, "--cert", "EBP1="+certFile,
				"--call", plat.URL+"/platDataOpen", "--orders", "O1,O2,O3", "--count", "2", "--window", "2s")
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantOut) {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "registered certNo "+card.CertNo()+" for ebpCode EBP1") {
				t.Errorf("stdout does not confirm the registration:\n%s", r.stdout)
			}
		})
	}
}

func TestCustomsSimUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail no certificate", []string{"customs-sim"}, "--cert"},
		{"fail certificate flag without ebpCode", []string{"customs-sim", "--cert", "cert.pem"}, "EBPCODE=CERT.pem"},
		{"fail certificate file missing", []string{"customs-sim", "--cert", "E=/nonexistent/cert.pem"}, "nonexistent"},
		{"fail call without orders", []string{"customs-sim", "--joint-test", "--call", "http://127.0.0.1:1/platDataOpen"}, "needs orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d stderr %q, want exit 2 mentioning %q", r.code, r.stderr, tt.want)
			}
		})
	}
}
