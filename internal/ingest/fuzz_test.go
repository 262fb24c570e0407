package ingest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ceb179/ceb179/internal/customs"
)

// FuzzHandler sends random bodies, content types and headers to the whole
// handler. It must never panic, and it must never answer 10000 to a body the
// openReq parser refuses.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, ct, body string }{
		{"POST", "application/x-www-form-urlencoded", `openReq={"orderNo":"O1","sessionID":"S1","serviceTime":1533271903898}`},
		{"POST", "application/x-www-form-urlencoded; charset=UTF-8", `openReq=%7B%22orderNo%22%3A%22O1%22%2C%22sessionID%22%3A%22S2%22%2C%22serviceTime%22%3A%221%22%7D`},
		{"POST", "application/json", `{"orderNo":"O1","sessionID":"S3","serviceTime":"1533271903898"}`},
		{"POST", "", `openReq={&quot;orderNo&quot;:&quot;O1&quot;,&quot;sessionID&quot;:&quot;S4&quot;,&quot;serviceTime&quot;:1}`},
		{"POST", "text/plain", `{\"orderNo\":\"O1\",\"sessionID\":\"S5\",\"serviceTime\":1}`},
		{"POST", "application/x-www-form-urlencoded", `openReq=`},
		{"GET", "", ``},
		{"POST", "multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
		{"POST", "application/json", `[1,2,3]`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, contentType string, body []byte) {
		if !validMethod(method) {
			method = http.MethodPost
		}
		store, q := newMemStore(), &memQueue{}
		h := New(store, q, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		r := httptest.NewRequest(method, Path, bytes.NewReader(body))
		if contentType != "" {
			r.Header["Content-Type"] = []string{contentType}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		var ack customs.Ack
		if err := json.Unmarshal(w.Body.Bytes(), &ack); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body.String())
		}
		_, parseErr := customs.ParseOpenReq(contentType, body)
		if ack.Code == customs.CodeSuccess {
			if method != http.MethodPost || parseErr != nil || len(body) > MaxBodyBytes {
				t.Fatalf("answered 10000 to %s %q (parse error %v)", method, body, parseErr)
			}
			if len(store.reqs) != 1 || len(q.msgs) != 1 {
				t.Fatalf("10000 with %d records and %d messages", len(store.reqs), len(q.msgs))
			}
		} else if len(q.msgs) != 0 {
			t.Fatalf("answer %s but a message was queued", ack.Code)
		}
	})
}

// validMethod reports whether m is a token httptest.NewRequest accepts.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
