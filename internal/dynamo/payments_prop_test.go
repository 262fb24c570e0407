package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"pgregory.net/rapid"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// faultTransport breaks TransactWriteItems calls as its plan says, call by
// call: "ok", "before" (fails before the table sees it) or "after" (the
// table applies it, the answer is lost).
type faultTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	plan []string
	n    int
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
		return f.next.RoundTrip(r)
	}
	f.mu.Lock()
	mode := "ok"
	if f.n < len(f.plan) {
		mode = f.plan[f.n]
	}
	f.n++
	f.mu.Unlock()
	switch mode {
	case "before":
		return nil, errors.New("injected: connection reset before the request")
	case "after":
		resp, err := f.next.RoundTrip(r)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, errors.New("injected: connection reset after the request")
	}
	return f.next.RoundTrip(r)
}

var propRun atomic.Int64

// TestPaymentsNeverHalfWritten is the property behind every batch: whatever
// the mix of new payments, repeats and payments taking another's order,
// and whichever transactions fail before or after the table applied them,
// each payment is stored whole or not at all, one order has one owner, and
// the answers are true: stored for nil and duplicate, not stored for a
// refusal.
func TestPaymentsNeverHalfWritten(t *testing.T) {
	env := awstest.New(t)
	table := env.Table("PaymentsTable")
	ft := &faultTransport{}
	cfg := awstest.Config(env.Endpoint)
	hc := cfg.HTTPClient.(interface {
		Do(*http.Request) (*http.Response, error)
	})
	ft.next = roundTripFunc(func(r *http.Request) (*http.Response, error) { return hc.Do(r) })
	cfg.HTTPClient = &http.Client{Transport: ft}
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	faulty := dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.Tables{Payments: table}, 0)
	look := paymentsEnv{store: dynamo.New(env.DynamoDB, dynamo.Tables{Payments: table}, 0), db: env.DynamoDB, table: table}
	base := fixture(t, "multi.json")
	base.TradingTime = records.FormatTradingTime(time.Now())

	rapid.Check(t, func(rt *rapid.T) {
		run := propRun.Add(1)
		n := rapid.IntRange(1, 24).Draw(rt, "payments")
		var ps []records.Payment
		for i := range n {
			kind := rapid.SampledFrom([]string{"new", "new", "new", "repeat", "steal"}).Draw(rt, "kind")
			if i == 0 || kind == "new" {
				p := base
				p.PayTransactionID = fmt.Sprintf("PR%d-%02d", run, i)
				k := rapid.IntRange(1, 3).Draw(rt, "orders")
				p.Orders = make([]records.Order, k)
				for j := range k {
					p.Orders[j] = base.Orders[j]
					p.Orders[j].OrderNo = fmt.Sprintf("PR%d-%02d-%d", run, i, j)
				}
				ps = append(ps, p)
				continue
			}
			other := ps[rapid.IntRange(0, len(ps)-1).Draw(rt, "other")]
			if kind == "repeat" {
				ps = append(ps, other)
				continue
			}
			p := other
			p.PayTransactionID = fmt.Sprintf("PR%d-%02d", run, i)
			p.Orders = append([]records.Order{}, other.Orders...)
			ps = append(ps, p)
		}
		plan := rapid.SliceOfN(rapid.SampledFrom([]string{"ok", "ok", "before", "after"}), 0, 12).Draw(rt, "plan")
		ft.mu.Lock()
		ft.plan, ft.n = plan, 0
		ft.mu.Unlock()

		errs := faulty.PutPayments(context.Background(), ps)
		owners := map[string]string{}
		for i, p := range ps {
			s := storedState(rt, look, p)
			if s == "PARTIAL" {
				rt.Fatalf("payment %d (%s) half-written; answer %v", i, p.PayTransactionID, errs[i])
			}
			err := errs[i]
			switch {
			case err == nil, errors.Is(err, records.ErrDuplicate):
				if s != "whole" {
					rt.Fatalf("payment %d answered %v but is %s", i, err, s)
				}
			case errors.Is(err, records.ErrConflict), errors.Is(err, records.ErrOrderTaken):
				if s == "whole" && !isRepeatOfStored(ps, i) {
					rt.Fatalf("payment %d refused (%v) but stored", i, err)
				}
			}
			if s == "whole" {
				for _, o := range p.Orders {
					if prev, ok := owners[o.OrderNo]; ok && prev != p.PayTransactionID {
						rt.Fatalf("order %s owned by %s and %s", o.OrderNo, prev, p.PayTransactionID)
					}
					owners[o.OrderNo] = p.PayTransactionID
				}
			}
		}
	})
}

// isRepeatOfStored reports whether ps[i] repeats an earlier payment of ps.
func isRepeatOfStored(ps []records.Payment, i int) bool {
	for j := range i {
		a, _ := ps[j].MarshalJSON()
		b, _ := ps[i].MarshalJSON()
		if bytes.Equal(a, b) {
			return true
		}
	}
	return false
}

// storedState is "whole", "absent" or "PARTIAL" for p, read from the table.
func storedState(t interface{ Fatal(...any) }, e paymentsEnv, p records.Payment) string {
	n := 0
	if e.itemQuiet(t, "PAY#"+p.PayTransactionID, "HEAD") != nil {
		n++
	}
	for _, o := range p.Orders {
		if e.itemQuiet(t, "PAY#"+p.PayTransactionID, "ORDER#"+o.OrderNo) != nil {
			n++
		}
		if id, ok := e.itemQuiet(t, "ORDER#"+o.OrderNo, "PAYMENT")["payTransactionId"].(*types.AttributeValueMemberS); ok && id.Value == p.PayTransactionID {
			n++
		}
	}
	switch n {
	case 0:
		return "absent"
	case 1 + 2*len(p.Orders):
		return "whole"
	}
	return "PARTIAL"
}

// itemQuiet returns the raw item under pk/sk, or nil.
func (e paymentsEnv) itemQuiet(t interface{ Fatal(...any) }, pk, sk string) map[string]types.AttributeValue {
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(e.table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
