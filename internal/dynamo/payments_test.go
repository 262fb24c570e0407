package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// paymentsEnv is a store over fresh emulated tables, with the raw client
// and table name for looking at the items themselves.
type paymentsEnv struct {
	store *dynamo.Store
	db    *dynamodb.Client
	table string
}

func newPaymentsEnv(tb testing.TB, retention time.Duration) paymentsEnv {
	tb.Helper()
	env := awstest.New(tb)
	tables := dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}
	return paymentsEnv{store: dynamo.New(env.DynamoDB, tables, retention), db: env.DynamoDB, table: tables.Payments}
}

// fixture reads a payment of records/testdata.
func fixture(tb testing.TB, name string) records.Payment {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "records", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := records.ParsePayment(b)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// item returns the raw item under pk/sk, or nil.
func (e paymentsEnv) item(tb testing.TB, pk, sk string) map[string]types.AttributeValue {
	tb.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk},
			"sk": &types.AttributeValueMemberS{Value: sk},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out.Item
}

// expiresAt reads the TTL attribute of an item.
func expiresAt(tb testing.TB, item map[string]types.AttributeValue) int64 {
	tb.Helper()
	n, ok := item["expiresAt"].(*types.AttributeValueMemberN)
	if !ok {
		tb.Fatalf("no numeric expiresAt in %v", item)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestPaymentsRoundTrip(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	ctx := context.Background()
	single, multi := fixture(t, "single.json"), fixture(t, "multi.json")
	for i, err := range e.store.PutPayments(ctx, []records.Payment{single, multi}) {
		if err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
	}
	tests := []struct {
		name    string
		orderNo string
		want    records.Payment
		wantErr error
	}{
		{name: "ok single", orderNo: "ord201903040001", want: single},
		{name: "ok first order of three", orderNo: "ord-B-0002", want: multi},
		{name: "ok last order of three", orderNo: "ord-C-0003", want: multi},
		{name: "fail unknown order", orderNo: "nope", wantErr: ceb179.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.store.PaymentByOrder(ctx, tt.orderNo)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PaymentByOrder(%s) =\n%+v\nwant\n%+v", tt.orderNo, got, tt.want)
			}
			// The amount's text survives storage ("5.0" stays "5.0").
			if got.TotalAmount != tt.want.TotalAmount {
				t.Errorf("amount %q, want %q", got.TotalAmount, tt.want.TotalAmount)
			}
		})
	}
	if _, err := e.store.GetPayment(ctx, "nope"); !errors.Is(err, ceb179.ErrNotFound) {
		t.Errorf("GetPayment(nope) = %v", err)
	}
}

func TestPaymentsRefusals(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	ctx := context.Background()
	single, multi := fixture(t, "single.json"), fixture(t, "multi.json")
	if errs := e.store.PutPayments(ctx, []records.Payment{single}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	changed := single
	changed.Note = "other"
	// multi, but its second order is single's order.
	taker := multi
	taker.Orders = append([]customs.Order(nil), multi.Orders...)
	taker.Orders[1].OrderNo = single.Orders[0].OrderNo

	// One call holding every case: the store groups them into transactions
	// and tells them apart.
	in := []records.Payment{single, changed, taker, multi, multi}
	errs := e.store.PutPayments(ctx, in)
	want := []error{records.ErrDuplicate, records.ErrConflict, records.ErrOrderTaken, nil, records.ErrDuplicate}
	for i := range in {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("payment %d: %v, want %v", i, errs[i], want[i])
		}
	}
	var ot *records.OrderTakenError
	if !errors.As(errs[2], &ot) || ot.OrderNo != single.Orders[0].OrderNo || ot.Owner != single.PayTransactionID {
		t.Errorf("order taken: %#v", ot)
	}
	// Nothing of the refused payment was stored... but multi, with the same
	// payTransactionId, was written afterwards in full.
	got, err := e.store.PaymentByOrder(ctx, "ord-A-0001")
	if err != nil || !reflect.DeepEqual(got, multi) {
		t.Errorf("multi after refusals: %v %+v", err, got)
	}
	got, err = e.store.PaymentByOrder(ctx, single.Orders[0].OrderNo)
	if err != nil || !reflect.DeepEqual(got, single) {
		t.Errorf("single after refusals: %v", err)
	}
}

func TestPaymentsNothingPartial(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	ctx := context.Background()
	single, multi := fixture(t, "single.json"), fixture(t, "multi.json")
	if errs := e.store.PutPayments(ctx, []records.Payment{single}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	taker := multi
	taker.Orders = append([]customs.Order(nil), multi.Orders...)
	taker.Orders[2].OrderNo = single.Orders[0].OrderNo
	if errs := e.store.PutPayments(ctx, []records.Payment{taker}); !errors.Is(errs[0], records.ErrOrderTaken) {
		t.Fatalf("err = %v", errs[0])
	}
	for _, k := range [][2]string{
		{"PAY#" + multi.PayTransactionID, "HEAD"},
		{"PAY#" + multi.PayTransactionID, "ORDER#ord-B-0002"},
		{"ORDER#ord-B-0002", "PAYMENT"},
		{"ORDER#ord-A-0001", "PAYMENT"},
	} {
		if it := e.item(t, k[0], k[1]); it != nil {
			t.Errorf("item %s/%s of a refused payment was stored", k[0], k[1])
		}
	}
}

func TestPaymentsTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	traded := time.Date(2026, 3, 4, 1, 31, 38, 0, ceb179.China) // single.json's tradingTime
	day := 24 * time.Hour
	tests := []struct {
		name      string
		retention time.Duration
		want      time.Time
	}{
		{name: "ok default three years and thirty days", retention: 0, want: traded.Add((3*365 + 30) * day)},
		{name: "ok longer retention", retention: 5 * 365 * day, want: traded.Add(5 * 365 * day)},
		{name: "ok too short raised to three years", retention: 365 * day, want: traded.Add(3 * 365 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newPaymentsEnv(t, tt.retention)
			p := fixture(t, "single.json")
			if errs := e.store.PutPayments(ctx, []records.Payment{p}); errs[0] != nil {
				t.Fatal(errs[0])
			}
			exp, err := e.store.PaymentExpiresAt(p)
			if err != nil || exp != tt.want.Unix() {
				t.Errorf("PaymentExpiresAt = %d, %v; want %d", exp, err, tt.want.Unix())
			}
			for _, k := range [][2]string{
				{"PAY#" + p.PayTransactionID, "HEAD"},
				{"PAY#" + p.PayTransactionID, "ORDER#" + p.Orders[0].OrderNo},
				{"ORDER#" + p.Orders[0].OrderNo, "PAYMENT"},
			} {
				if got := expiresAt(t, e.item(t, k[0], k[1])); got != tt.want.Unix() {
					t.Errorf("%s/%s expiresAt = %s, want %s", k[0], k[1], time.Unix(got, 0).UTC(), tt.want.UTC())
				}
			}
		})
	}
}

func TestPaymentsBatch(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	ctx := context.Background()
	base := fixture(t, "multi.json")
	var ps []records.Payment
	for i := range 120 {
		p := base
		p.PayTransactionID = fmt.Sprintf("T%04d", i)
		p.Orders = append([]customs.Order(nil), base.Orders...)
		for j := range p.Orders {
			p.Orders[j].OrderNo = fmt.Sprintf("O%04d-%d", i, j)
		}
		ps = append(ps, p)
	}
	for i, err := range e.store.PutPayments(ctx, ps) {
		if err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
	}
	for i, err := range e.store.PutPayments(ctx, ps) {
		if !errors.Is(err, records.ErrDuplicate) {
			t.Fatalf("second write of payment %d: %v", i, err)
		}
	}
	got, err := e.store.PaymentByOrder(ctx, "O0119-2")
	if err != nil || !reflect.DeepEqual(got, ps[119]) {
		t.Errorf("PaymentByOrder = %v, %+v", err, got)
	}
}

func TestPutPaymentsExpired(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	tests := []struct {
		name        string
		tradingTime string
		wantErr     error
	}{
		{"ok traded within the retention", time.Now().In(ceb179.China).AddDate(-3, 0, 0).Format(records.TradingTimeLayout), nil},
		{"fail retention already over", "20190304013138", records.ErrExpired},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fixture(t, "single.json")
			p.PayTransactionID = fmt.Sprintf("EXPIRY%d", i)
			p.Orders[0].OrderNo = fmt.Sprintf("EXPIRY-ORDER-%d", i)
			p.TradingTime = tt.tradingTime
			err := e.store.PutPayments(context.Background(), []records.Payment{p})[0]
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			_, getErr := e.store.GetPayment(context.Background(), p.PayTransactionID)
			if stored := getErr == nil; stored != (tt.wantErr == nil) {
				t.Fatalf("stored = %v (get error %v)", stored, getErr)
			}
		})
	}
}
