package customssim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/devcert"
	"github.com/ceb179/ceb179/internal/signature"
)

const ebpCode = "46016602EV"

// unsigned returns a valid upload for sessionID with a link holding & and =,
// a note with + and %, and CJK text, so that form encoding matters.
func unsigned(t *testing.T, sessionID string) customs.Unsigned {
	t.Helper()
	head, err := customs.MarshalHead(customs.Head{
		GUID: "2D5D1A1E-3C5B-5C86-9E3F-6A1B2C3D4E5F", InitalRequest: "<xml><a>1&amp;2</a></xml>", InitalResponse: "<xml>ok</xml>",
		EbpCode: ebpCode, PayCode: "1537923071", PayTransactionID: "4200000681202009235085032319",
		TotalAmount: "88.08", Currency: "142", VerDept: "3", PayType: "4", TradingTime: "20200923145426", Note: "a+b=c 100% 备注",
	})
	if err != nil {
		t.Fatal(err)
	}
	lists, err := customs.MarshalLists([]customs.Order{{
		OrderNo: "ORD-1", RecpAccount: "46016602EV", RecpCode: "46016602EV", RecpName: "海南省荣誉进出口贸易有限公司",
		GoodsInfo: []customs.Goods{{Gname: "济州花梨精华面膜", ItemLink: "http://m.example.com/detail?itemId=999761&shopId=453"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return customs.Unsigned{SessionID: sessionID, Head: head, Lists: lists, ServiceTime: "1601282210417"}
}

func signed(t *testing.T, p *devcert.Pair, u customs.Unsigned) []byte {
	t.Helper()
	sig, err := signature.Sign(p.Key, u.SignSource())
	if err != nil {
		t.Fatal(err)
	}
	return u.PayExInfoStr(p.CertNo(), sig)
}

func post(t *testing.T, srv *httptest.Server, payExInfoStr []byte) customs.UploadAck {
	t.Helper()
	resp, err := http.Post(srv.URL+UploadPath, customs.UploadContentType, strings.NewReader(string(customs.EncodeUploadForm(payExInfoStr))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ack, err := customs.ParseUploadAck(raw)
	if err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	return ack
}

func TestUploadChecks(t *testing.T) {
	card, err := devcert.Generate(devcert.SM2, "card")
	if err != nil {
		t.Fatal(err)
	}
	oldCard, err := devcert.Generate(devcert.RSA, "old card")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := devcert.Generate(devcert.SM2, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	sim := New()
	sim.Register(ebpCode, card.Cert)
	sim.Register(ebpCode, oldCard.Cert)
	srv := httptest.NewServer(sim)
	defer srv.Close()

	tampered := func() []byte {
		b := signed(t, card, unsigned(t, "S-TAMPER"))
		return []byte(strings.Replace(string(b), `"totalAmount":88.08`, `"totalAmount":88.09`, 1))
	}
	badRules := unsigned(t, "S-RULES")
	badRules.Head = []byte(strings.Replace(string(badRules.Head), `"verDept":"3"`, `"verDept":"9"`, 1))

	tests := []struct {
		name        string
		body        []byte
		wantCode    string
		wantMessage string
		wantValid   bool
	}{
		{"ok SM2 card", signed(t, card, unsigned(t, "S-SM2")), customs.CodeSuccess, "上传成功", true},
		{"ok RSA card registered for the same ebpCode", signed(t, oldCard, unsigned(t, "S-RSA")), customs.CodeSuccess, "上传成功", true},
		{"fail same sessionID again", signed(t, card, unsigned(t, "S-SM2")), customs.CodeFailure, "入库失败", true},
		{"fail data changed after signing", tampered(), customs.CodeFailure, "验签失败", false},
		{"fail certificate not registered", signed(t, stranger, unsigned(t, "S-STRANGER")), customs.CodeFailure, "not registered", false},
		{"fail no certNo", unsigned(t, "S-NOCERT").PayExInfoStr("", "AAAA"), customs.CodeFailure, "certNo不为空", false},
		{"fail field rule", signed(t, card, badRules), customs.CodeFailure, "verDept", true},
		{"fail not a payExInfoStr", []byte(`{"hello":1}`), customs.CodeFailure, "payExInfoStr", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := post(t, srv, tt.body)
			if ack.Code != tt.wantCode || !strings.Contains(ack.Message, tt.wantMessage) {
				t.Fatalf("answer %+v, want %s containing %q", ack, tt.wantCode, tt.wantMessage)
			}
			ups := sim.Uploads()
			if got := ups[len(ups)-1].SignatureValid; got != tt.wantValid {
				t.Errorf("SignatureValid = %v, want %v", got, tt.wantValid)
			}
		})
	}
}

func TestJointTestModeSkipsSignature(t *testing.T) {
	card, _ := devcert.Generate(devcert.SM2, "card")
	stranger, _ := devcert.Generate(devcert.SM2, "stranger")
	sim := New(WithoutSignatureCheck())
	sim.Register(ebpCode, card.Cert)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	// The joint-test endpoint answers 10000 to a signature it never checked:
	// which is why its 10000 proves nothing.
	if ack := post(t, srv, signed(t, stranger, unsigned(t, "S-1"))); ack.Code != customs.CodeSuccess {
		t.Fatalf("answer %+v, want 10000", ack)
	}
	if sim.Uploads()[0].SignatureValid {
		t.Fatal("the upload is still reported as not verified")
	}
}

func TestServeRefusesOtherRequests(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"fail GET", http.MethodGet, UploadPath, http.StatusMethodNotAllowed},
		{"fail other path", http.MethodPost, "/other", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// platform is a minimal platform for rehearsal tests: it answers code and,
// when upload is set, uploads signed data for the order after delay.
func platform(t *testing.T, sim *httptest.Server, card *devcert.Pair, code string, upload bool, delay time.Duration) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != UserAgent {
			t.Errorf("User-Agent %q", r.UserAgent())
		}
		var open customs.OpenReq
		_ = r.ParseForm()
		_ = json.Unmarshal([]byte(r.PostForm.Get("openReq")), &open)
		_, _ = io.WriteString(w, `{"code":"`+code+`","message":"","serviceTime":1}`)
		if !upload {
			return
		}
		go func() {
			time.Sleep(delay)
			u := unsigned(t, open.SessionID)
			u.Lists = []byte(strings.Replace(string(u.Lists), "ORD-1", open.OrderNo, 1))
			body := customs.EncodeUploadForm(signed(t, card, u))
			resp, err := http.Post(sim.URL+UploadPath, customs.UploadContentType, strings.NewReader(string(body)))
			if err == nil {
				resp.Body.Close()
			}
		}()
	}))
}

func TestRehearse(t *testing.T) {
	card, _ := devcert.Generate(devcert.SM2, "card")
	tests := []struct {
		name     string
		code     string
		upload   bool
		delay    time.Duration
		wantPass bool
		wantText string
	}{
		{"ok uploaded in time", "10000", true, 10 * time.Millisecond, true, "rehearsal PASSED: 2 of 2"},
		{"fail never uploaded", "10000", false, 0, false, "no upload within"},
		{"fail uploaded too late", "10000", true, 2 * time.Second, false, "no upload within"},
		{"fail ack not 10000", "20001", true, 10 * time.Millisecond, false, "answered 20001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := New()
			sim.Register(ebpCode, card.Cert)
			simSrv := httptest.NewServer(sim)
			defer simSrv.Close()
			plat := platform(t, simSrv, card, tt.code, tt.upload, tt.delay)
			defer plat.Close()

			rep := sim.Rehearse(context.Background(), Rehearsal{PlatformURL: plat.URL + "/platDataOpen", Orders: []string{"ORD-A", "ORD-B"}, Window: 500 * time.Millisecond})
			if rep.Passed() != tt.wantPass {
				t.Fatalf("Passed = %v, want %v: %+v", rep.Passed(), tt.wantPass, rep.Results)
			}
			var sb strings.Builder
			if err := rep.WriteTable(&sb); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sb.String(), tt.wantText) {
				t.Fatalf("report does not say %q:\n%s", tt.wantText, sb.String())
			}
		})
	}
}

func TestNewSessionIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewSessionID()
		if len(id) != 24 || id[6] != '-' || id[15] != '-' {
			t.Fatalf("sessionID %q is not shaped like customs'", id)
		}
		if seen[id] {
			t.Fatalf("sessionID %q repeated", id)
		}
		seen[id] = true
	}
}
