package settle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/settle"
	"github.com/ceb179/ceb179/records"
)

// failingOpen is a DeclaredStore whose reads fail.
type failingOpen struct{ settle.DeclaredStore }

func (failingOpen) OpenOrders(context.Context, time.Time, int) ([]records.DeclaredOrder, bool, error) {
	return nil, false, errors.New("table unreachable")
}

// TestMissingPass declares orders on the emulator and pays some of them
// behind the store's back (the owner item written, the unpaid mark left,
// as a crash between the two writes would leave it): the pass counts only
// the orders truly without a record, closes the others, and reads no more
// than the open orders. A failing pass does not keep the settler's other
// passes from running.
func TestMissingPass(t *testing.T) {
	env := awstest.New(t)
	table := env.Table("PaymentsTable")
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: table}, 0)
	ctx := context.Background()
	now := time.Now()
	var orders []records.DeclaredOrder
	for i := range 30 {
		orders = append(orders, records.DeclaredOrder{OrderNo: fmt.Sprintf("MP-%02d", i), DeclaredAt: now.Add(-2 * time.Hour).Add(time.Duration(i) * time.Second)})
	}
	orders[29].DeclaredAt = now // within the grace
	for i, err := range store.DeclareOrders(ctx, orders) {
		if err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	for i := range 10 { // paid, but the unpaid mark was never removed
		_, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "ORDER#" + orders[i].OrderNo}, "sk": &types.AttributeValueMemberS{Value: "PAYMENT"},
			"payTransactionId": &types.AttributeValueMemberS{Value: "P-" + orders[i].OrderNo}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rec := metrics.New("settle", nil)
	m := settle.NewMissing(store, slog.New(slog.NewTextHandler(io.Discard, nil)), rec, settle.WithMissingClock(func() time.Time { return now }))
	rep, err := m.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range rep.Orders {
		got = append(got, o.OrderNo)
	}
	want := []string{}
	for _, o := range orders[10:29] {
		want = append(want, o.OrderNo)
	}
	if rep.Missing != 19 || rep.Closed != 10 || !slices.Equal(got, want) || rec.Total(settle.MetricMissing) != 19 {
		t.Errorf("report %d missing %v, %d closed, metric %v", rep.Missing, got, rep.Closed, rec.Total(settle.MetricMissing))
	}
	open, _, err := store.OpenOrders(ctx, now.Add(time.Minute), 100)
	if err != nil || len(open) != 20 {
		t.Errorf("open after the run: %d %v, want 20 (19 missing and 1 within the grace)", len(open), err)
	}
	if rep, err := m.Run(ctx); err != nil || rep.Missing != 19 || rep.Closed != 0 {
		t.Errorf("second run: %+v %v", rep, err)
	}

	t.Run("fail pass does not stop the others", func(t *testing.T) {
		b := newBed(t)
		b.request(t, "MP-S1", "RECEIVED", false)
		b.now = b.now.Add(time.Minute)
		s := settle.New(b.store, b.assemble, b.sign, b.dead, settle.WithClock(func() time.Time { return b.now }),
			settle.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			settle.WithMissing(settle.NewMissing(failingOpen{store}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)))
		rep, err := s.Run(ctx)
		if err == nil || rep.Queued != 1 {
			t.Errorf("report %+v, err %v: want the request queued and the pass's error", rep, err)
		}
	})
}
