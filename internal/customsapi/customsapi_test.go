package customsapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
)

// newClient returns a client for srv, failing the test on error.
func newClient(tb testing.TB, srv *customssim.Server, opts ...Option) *Client {
	tb.Helper()
	c, err := New(srv.UploadURL(), opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// awkwardPayload holds every character that breaks a careless form encoder.
const awkwardPayload = `{"sessionID":"s-1&x=y","payExchangeInfoHead":{"note":"a+b=c 100% & 中文 ✓ /<>?#"},` +
	`"payExchangeInfoLists":[{"goodsInfo":[{"gname":"商品","itemLink":"https://shop.example/item?id=1&sku=2;https://x.example/?q=%20"}]}],` +
	`"serviceTime":"1553047681000","certNo":"01691f7f","signValue":"ab+/cd==\n"}`

func TestUploadFormEncoding(t *testing.T) {
	srv := customssim.Serve(t)
	c := newClient(t, srv)
	a, err := c.Upload(context.Background(), []byte(awkwardPayload))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if !a.Ack.Accepted() || a.HTTPStatus != http.StatusOK {
		t.Fatalf("answer = %+v, want accepted", a)
	}
	ups := srv.Uploads()
	if len(ups) != 1 {
		t.Fatalf("server received %d uploads, want 1", len(ups))
	}
	up := ups[0] // the fake records POSTs only: any other method gets 405
	if up.ContentType != "application/x-www-form-urlencoded; charset=UTF-8" {
		t.Errorf("content type = %q", up.ContentType)
	}
	if len(up.Form) != 1 || len(up.Form["payExInfoStr"]) != 1 {
		t.Errorf("form = %v keys, want exactly one field payExInfoStr", len(up.Form))
	}
	if up.PayExInfoStr != awkwardPayload {
		t.Errorf("payExInfoStr after the server's form parser differs:\n got %q\nwant %q", up.PayExInfoStr, awkwardPayload)
	}
	if want := "payExInfoStr=" + formEscape(awkwardPayload); string(up.Body) != want {
		t.Errorf("body is not the byte-exact form encoding:\n got %s\nwant %s", up.Body, want)
	}
	if a.BodyDigest != sha256Hex(up.Body) {
		t.Errorf("BodyDigest does not match the body the server received")
	}
}

// formEscape is an independent application/x-www-form-urlencoded encoder:
// every byte outside A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex), and
// space becomes +.
func formEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func TestUploadAnswers(t *testing.T) {
	tests := []struct {
		name      string
		reply     customssim.Reply
		timeout   time.Duration
		wantErr   ErrorKind
		retryable bool
		wantCode  string
		wantMsg   string
	}{
		{name: "ok accepted", reply: customssim.Accepted(), wantCode: "10000", wantMsg: "上传成功"},
		{name: "ok rejected keeps message", reply: customssim.Rejected("certNo : certNo不为空;"), wantCode: "20000", wantMsg: "certNo : certNo不为空;"},
		{name: "ok duplicate", reply: customssim.Duplicate(), wantCode: "20000", wantMsg: "入库失败"},
		{name: "ok HTTP 400 with customs' own answer is its verdict", reply: customssim.Reply{Status: 400, Code: "20000", Message: "payExInfoStr : 格式错误;"},
			wantCode: "20000", wantMsg: "payExInfoStr : 格式错误;"},
		{name: "fail 502 is retryable", reply: customssim.Status(502), wantErr: KindHTTP, retryable: true},
		{name: "fail 503 is retryable", reply: customssim.Status(503), wantErr: KindHTTP, retryable: true},
		{name: "fail 429 is retryable", reply: customssim.Status(429), wantErr: KindHTTP, retryable: true},
		{name: "fail 404 is retryable (maintenance)", reply: customssim.Status(404), wantErr: KindHTTP, retryable: true},
		{name: "fail 403 is retryable (maintenance)", reply: customssim.Status(403), wantErr: KindHTTP, retryable: true},
		{name: "fail 403 claiming 10000 is no verdict", reply: customssim.Reply{Status: 403, Code: "10000", Message: "上传成功"}, wantErr: KindHTTP, retryable: true},
		{name: "fail 500 with customs' JSON is no verdict", reply: customssim.Reply{Status: 500, Code: "20000", Message: "系统异常"}, wantErr: KindHTTP, retryable: true},
		{name: "fail html 200 is retryable", reply: customssim.Reply{Body: "<html>maintenance</html>"}, wantErr: KindAnswer, retryable: true},
		{name: "fail hang times out", reply: customssim.Hang(), timeout: 200 * time.Millisecond, wantErr: KindTimeout, retryable: true},
		{name: "fail dropped connection", reply: customssim.Drop(), wantErr: KindNetwork, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := customssim.Serve(t)
			srv.Script(tt.reply)
			var opts []Option
			if tt.timeout > 0 {
				opts = append(opts, WithTimeout(tt.timeout))
			}
			c := newClient(t, srv, opts...)
			a, err := c.Upload(context.Background(), []byte(awkwardPayload))
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *Error of kind %s", err, tt.wantErr)
				}
				if e.Kind != tt.wantErr || e.Retryable() != tt.retryable {
					t.Fatalf("err kind %s retryable %v, want %s %v (%v)", e.Kind, e.Retryable(), tt.wantErr, tt.retryable, err)
				}
				// The request reached the simulator: customs may have it.
				if e.NotDelivered || srv.Posts() != 1 {
					t.Errorf("NotDelivered %v with %d posts at customs, want a maybe-delivered attempt", e.NotDelivered, srv.Posts())
				}
				if strings.Contains(err.Error(), "中文") || strings.Contains(err.Error(), "sku") {
					t.Errorf("error repeats the payload: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if a.Ack.Code != tt.wantCode || a.Ack.Message != tt.wantMsg {
				t.Errorf("ack = %+v, want code %s message %q", a.Ack, tt.wantCode, tt.wantMsg)
			}
			if a.Latency <= 0 {
				t.Errorf("latency = %v, want > 0", a.Latency)
			}
		})
	}
}

// TestUploadNotDelivered: an attempt that never reached customs is told
// from one that may have: only the latter can have been stored.
func TestUploadNotDelivered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + customssim.UploadPath
	ln.Close()
	tests := []struct {
		name         string
		url          func(*customssim.Server) string
		reply        customssim.Reply
		wantKind     ErrorKind
		notDelivered bool
	}{
		{"ok connection refused is certainly not delivered", func(*customssim.Server) string { return closedURL }, customssim.Accepted(), KindNetwork, true},
		{"ok TLS handshake refused is certainly not delivered", func(s *customssim.Server) string { return s.UploadURL() }, customssim.Accepted(), KindTLS, true},
		{"ok connection dropped after the request may have delivered it", func(s *customssim.Server) string { return s.UploadURL() }, customssim.Drop(), KindNetwork, false},
		{"ok timeout after the request may have delivered it", func(s *customssim.Server) string { return s.UploadURL() }, customssim.Hang(), KindTimeout, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := customssim.Serve(t)
			if tt.wantKind == KindTLS {
				srv = customssim.ServeTLS(t)
			}
			srv.Script(tt.reply)
			c, err := New(tt.url(srv), WithTimeout(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Upload(context.Background(), []byte(awkwardPayload))
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.wantKind {
				t.Fatalf("err = %v, want kind %s", err, tt.wantKind)
			}
			if e.NotDelivered != tt.notDelivered {
				t.Errorf("NotDelivered = %v, want %v (%v)", e.NotDelivered, tt.notDelivered, err)
			}
			// What customs saw agrees.
			if posts := srv.Posts(); (posts == 0) != tt.notDelivered {
				t.Errorf("customs counted %d posts", posts)
			}
		})
	}
}

func TestUploadContextDeadline(t *testing.T) {
	srv := customssim.Serve(t)
	srv.Script(customssim.Hang())
	c := newClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Upload(ctx, []byte("{}"))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTimeout {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Upload took %v, the context allowed 150ms", d)
	}
}

func TestTLS(t *testing.T) {
	srv := customssim.ServeTLS(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []Option
		ok   bool
	}{
		{name: "fail self-signed certificate refused by default"},
		{name: "ok accepted with its CA as PEM", opts: []Option{WithCAPEM(srv.CAPEM())}, ok: true},
		{name: "ok accepted with its CA as a bundle file", opts: []Option{WithCAFile(caFile)}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Posts()
			c := newClient(t, srv, tt.opts...)
			a, err := c.Upload(context.Background(), []byte(awkwardPayload))
			if !tt.ok {
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindTLS || e.Retryable() || !e.NotDelivered {
					t.Fatalf("err = %v, want a non-retryable TLS error, certainly not delivered", err)
				}
				if srv.Posts() != before {
					t.Errorf("server received the upload over an untrusted connection")
				}
				return
			}
			if err != nil || !a.Ack.Accepted() {
				t.Fatalf("Upload = %+v, %v; want accepted", a, err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		opts []Option
		ok   bool
	}{
		{name: "ok production", url: ProductionURL, ok: true},
		{name: "ok joint test", url: TestURL, ok: true},
		{name: "ok http on loopback", url: "http://127.0.0.1:8080/x", ok: true},
		{name: "ok http on localhost", url: "http://localhost:8080/x", ok: true},
		{name: "fail http elsewhere", url: "http://customs.chinaport.gov.cn/ceb2grab/grab/realTimeDataUpload"},
		{name: "fail relative url", url: "/ceb2grab/grab/realTimeDataUpload"},
		{name: "fail ftp", url: "ftp://127.0.0.1/x"},
		{name: "fail missing CA file", url: ProductionURL, opts: []Option{WithCAFile(filepath.Join(dir, "none.pem"))}},
		{name: "fail CA file without certificates", url: ProductionURL, opts: []Option{WithCAFile(junk)}},
		{name: "fail zero timeout", url: ProductionURL, opts: []Option{WithTimeout(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.url, tt.opts...)
			if (err == nil) != tt.ok {
				t.Fatalf("New(%q) error = %v, want ok %v", tt.url, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestEndpointsAreDocumented(t *testing.T) {
	if TestURL != customs.TestUploadURL || ProductionURL != customs.ProductionUploadURL {
		t.Fatal("endpoint constants drifted from package customs")
	}
}
