package records_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/paymentsapi"
	"github.com/ceb179/ceb179/records"
)

// TestPaymentsAPI checks the payments API's answers to one payment (the
// shape of today's callers), its refusals of other paths and methods, and
// that a store failure answers 503 without the store's own text.
func TestPaymentsAPI(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	h := paymentsapi.NewHandler(records.NewRecorder(store), &declared{orders: map[string]time.Time{}}, nil)
	single := string(readFixture(t, "single.json"))
	multi := string(readFixture(t, "multi.json"))
	taken := strings.Replace(multi, `"ord-A-0001"`, `"ord201903040001"`, 1)
	taken = strings.Replace(taken, `"4200000301201903040012"`, `"T2"`, 1)

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		want   string
	}{
		{name: "ok recorded", method: "POST", path: "/payments", body: single, status: 201, want: `{"result":"recorded","payTransactionId":"2019030422001434180520096410"}`},
		{name: "ok duplicate", method: "POST", path: "/payments", body: single, status: 200, want: `{"result":"duplicate","payTransactionId":"2019030422001434180520096410"}`},
		{name: "fail conflict", method: "POST", path: "/payments", body: strings.Replace(single, `"note":"批量订单，测试"`, `"note":""`, 1), status: 409, want: `"error":"conflict"`},
		{name: "fail order taken", method: "POST", path: "/payments", body: taken, status: 409, want: `order ord201903040001 already belongs to payment 2019030422001434180520096410`},
		{name: "fail invalid", method: "POST", path: "/payments", body: strings.Replace(multi, `"verDept":"2"`, `"verDept":"9"`, 1), status: 422, want: `"reasons":["payExchangeInfoHead.verDept: must be \"1\", \"2\" or \"3\""]`},
		{name: "fail malformed", method: "POST", path: "/payments", body: `{"guid":"x"}`, status: 400, want: `"error":"malformed"`},
		{name: "fail method", method: "GET", path: "/payments", status: 405, want: `"error":"method not allowed"`},
		{name: "fail path", method: "POST", path: "/other", status: 404, want: `"error":"not found"`},
		{name: "fail batch not JSON", method: "POST", path: "/payments", body: "[1,", status: 400, want: `"error":"malformed"`},
		{name: "ok orders", method: "POST", path: "/orders", body: "A-1\n\"A-2\"\n{\"orderNo\":\"A-3\"}\n{\"orderNo\":\"\"}", status: 200,
			want: `"counts":{"declared":3,"invalid":1}`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
		body := rec.Body.String()
		if rec.Code != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want %d with %s", tt.name, rec.Code, body, tt.status, tt.want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: content type %q", tt.name, ct)
		}
	}

	t.Run("fail store down", func(t *testing.T) {
		down := newMemStore()
		down.fail = errors.New("secret internal detail")
		rec := httptest.NewRecorder()
		paymentsapi.NewHandler(records.NewRecorder(down), nil, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/payments", bytes.NewReader([]byte(single))))
		if rec.Code != 503 || strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("%d %s", rec.Code, rec.Body.String())
		}
	})
}
