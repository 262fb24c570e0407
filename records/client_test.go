package records_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ceb179/ceb179/internal/paymentsapi"
	"github.com/ceb179/ceb179/records"
)

const (
	testKeyID  = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "cn-north-1"
)

// declared is an in-memory records.OrderStore.
type declared struct {
	mu     sync.Mutex
	orders map[string]time.Time
}

func (d *declared) DeclareOrders(_ context.Context, os []records.DeclaredOrder) []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	errs := make([]error, len(os))
	for i, o := range os {
		if _, ok := d.orders[o.OrderNo]; ok {
			errs[i] = records.ErrDuplicate
			continue
		}
		d.orders[o.OrderNo] = o.DeclaredAt
	}
	return errs
}

// sigV4 refuses a request whose SigV4 signature (service execute-api,
// region testRegion, the test key) does not verify: it signs a copy of the
// request again at the time it names and compares, as API Gateway's IAM
// authorization does. It counts every request it sees.
func sigV4(next http.Handler, seen *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || r.Header.Get("X-Amz-Content-Sha256") != hash {
			http.Error(w, `{"message":"Forbidden"}`, http.StatusForbidden)
			return
		}
		check, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		auth := r.Header.Get("Authorization")
		_, signed, _ := strings.Cut(auth, "SignedHeaders=")
		signed, _, _ = strings.Cut(signed, ",")
		for _, h := range strings.Split(signed, ";") {
			if h != "host" {
				check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		check.ContentLength = r.ContentLength
		creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, check, hash, "execute-api", testRegion, at); err != nil ||
			check.Header.Get("Authorization") != auth {
			http.Error(w, `{"message":"The request signature we calculated does not match the signature you provided."}`, http.StatusForbidden)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func testConfig(secret string) aws.Config {
	return aws.Config{Region: testRegion, Credentials: credentials.NewStaticCredentialsProvider(testKeyID, secret, "")}
}

func TestClient(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	orders := &declared{orders: map[string]time.Time{}}
	var seen atomic.Int64
	srv := httptest.NewServer(sigV4(paymentsapi.NewHandler(records.NewRecorder(store), orders, nil), &seen))
	t.Cleanup(srv.Close)
	c, err := records.NewClient(srv.URL+"/payments", testConfig(testSecret), records.WithRetries(3, time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := mustParse(t, "single.json")
	multi := mustParse(t, "multi.json")

	t.Run("ok recorded then duplicate", func(t *testing.T) {
		for _, want := range []records.Result{records.Recorded, records.Duplicate} {
			if res, err := c.Record(ctx, p); res != want || err != nil {
				t.Errorf("Record: %q %v, want %s", res, err, want)
			}
		}
	})
	t.Run("fail invalid without a request", func(t *testing.T) {
		bad := multi
		bad.Currency = ""
		before := seen.Load()
		_, err := c.Record(ctx, bad)
		var ve *records.ValidationError
		if !errors.As(err, &ve) || ve.Violations[0].Path != "payExchangeInfoHead.currency" || seen.Load() != before {
			t.Errorf("err %v, %d requests", err, seen.Load()-before)
		}
	})
	t.Run("fail conflict names the order", func(t *testing.T) {
		taken := multi
		taken.PayTransactionID = "T-CONFLICT"
		taken.Orders = append([]records.Order{}, multi.Orders...)
		taken.Orders[2] = p.Orders[0]
		_, err := c.Record(ctx, taken)
		var ot *records.OrderTakenError
		if !errors.As(err, &ot) || ot.OrderNo != p.Orders[0].OrderNo || ot.Owner != p.PayTransactionID {
			t.Errorf("err %v", err)
		}
	})
	t.Run("ok batch of 250 in three requests", func(t *testing.T) {
		ps := make([]records.Payment, 250)
		for i := range ps {
			ps[i] = numbered(t, "C", i)
		}
		ps[100].Orders[0].RecpName = ""
		before := seen.Load()
		out, err := c.RecordBatch(ctx, ps)
		if err != nil || seen.Load()-before != 3 {
			t.Fatalf("err %v, %d requests", err, seen.Load()-before)
		}
		for i, o := range out {
			want := records.Recorded
			if i == 100 {
				want = records.Invalid
			}
			if o.Index != i || o.Result != want || o.PayTransactionID != ps[i].PayTransactionID {
				t.Errorf("outcome %d: %+v", i, o)
			}
		}
	})
	t.Run("ok declare orders", func(t *testing.T) {
		out, err := c.DeclareOrders(ctx, []records.DeclaredOrder{{OrderNo: "D-1"}, {OrderNo: "D-2", DeclaredAt: time.Unix(1700000000, 0)}, {OrderNo: "D-1"}, {OrderNo: " bad"}})
		if err != nil {
			t.Fatal(err)
		}
		got := []records.Result{out[0].Result, out[1].Result, out[2].Result, out[3].Result}
		if got[0] != records.Declared || got[1] != records.Declared || got[2] != records.Duplicate || got[3] != records.Invalid ||
			!orders.orders["D-2"].Equal(time.Unix(1700000000, 0)) {
			t.Errorf("outcomes %v, orders %v", got, orders.orders)
		}
	})
	t.Run("fail wrong secret", func(t *testing.T) {
		bad, _ := records.NewClient(srv.URL, testConfig("not-the-secret"))
		_, err := bad.Record(ctx, numbered(t, "W", 1))
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("err %v, want HTTP 403", err)
		}
	})
}

// numbered is the single-order fixture with identifiers unique by tag and i.
func numbered(tb testing.TB, tag string, i int) records.Payment {
	tb.Helper()
	p := mustParse(tb, "single.json")
	p.PayTransactionID = tag + "-PAY-" + fmt.Sprintf("%04d", i)
	p.Orders[0].OrderNo = tag + "-ORD-" + itoa(i)
	return p
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestClientRetries puts a rude API in front of the real handler: it drops
// connections, throttles, fails with 502, and answers a batch 503 with
// some items not stored. The client retries what may pass, sends only the
// unstored items again, and stops at its tries or its context.
func TestClientRetries(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	api := paymentsapi.NewHandler(records.NewRecorder(store), &declared{orders: map[string]time.Time{}}, nil)
	var (
		calls atomic.Int64
		mode  atomic.Value
		items atomic.Int64 // items in the last request that reached the handler
	)
	mode.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch mode.Load().(string) {
		case "flaky":
			switch n % 4 {
			case 1: // the connection drops before an answer
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				conn.Close()
				return
			case 2:
				w.WriteHeader(http.StatusTooManyRequests)
				return
			case 3:
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		case "down":
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(r.Body)
		items.Store(int64(bytes.Count(body, []byte(`"payTransactionId"`))))
		r.Body = io.NopCloser(bytes.NewReader(body))
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	t.Run("ok flaky API", func(t *testing.T) {
		mode.Store("flaky")
		calls.Store(0)
		c, _ := records.NewClient(srv.URL, testConfig(testSecret), records.WithRetries(5, time.Millisecond, 2*time.Millisecond))
		res, err := c.Record(ctx, numbered(t, "R", 1))
		if res != records.Recorded || err != nil || calls.Load() != 4 {
			t.Errorf("%q %v after %d calls, want recorded after 4", res, err, calls.Load())
		}
	})
	t.Run("ok only unstored items sent again", func(t *testing.T) {
		mode.Store("ok")
		store.failIDs = map[string]int{"R-PAY-0012": 1} // fails once
		c, _ := records.NewClient(srv.URL, testConfig(testSecret), records.WithRetries(3, time.Millisecond, 2*time.Millisecond))
		ps := []records.Payment{numbered(t, "R", 11), numbered(t, "R", 12), numbered(t, "R", 13)}
		calls.Store(0)
		out, err := c.RecordBatch(ctx, ps)
		if err != nil || calls.Load() != 2 || items.Load() != 1 || out[1].Result != records.Recorded || out[0].Result != records.Recorded {
			t.Errorf("err %v, %d calls, last with %d items, outcomes %+v", err, calls.Load(), items.Load(), out)
		}
	})
	t.Run("fail down after the tries", func(t *testing.T) {
		mode.Store("down")
		calls.Store(0)
		c, _ := records.NewClient(srv.URL, testConfig(testSecret), records.WithRetries(3, time.Millisecond, 2*time.Millisecond))
		_, err := c.Record(ctx, numbered(t, "R", 2))
		if !errors.Is(err, records.ErrUnavailable) || calls.Load() != 9 {
			t.Errorf("err %v after %d calls, want ErrUnavailable after 3 x 3", err, calls.Load())
		}
	})
	t.Run("fail context ends the retries", func(t *testing.T) {
		mode.Store("down")
		calls.Store(0)
		c, _ := records.NewClient(srv.URL, testConfig(testSecret), records.WithRetries(100, 50*time.Millisecond, time.Second))
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := c.Record(cctx, numbered(t, "R", 3))
		if !errors.Is(err, context.DeadlineExceeded) || calls.Load() > 20 {
			t.Errorf("err %v after %d calls", err, calls.Load())
		}
	})
}
