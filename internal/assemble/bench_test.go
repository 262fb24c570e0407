package assemble_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
)

// BenchmarkAssemble measures the assembly of one customs request against
// the emulated stack: read the request, find the payment by order (two
// reads), build and store the pending upload, send the sign job and move
// the state. The payment has three orders.
func BenchmarkAssemble(b *testing.B) {
	bed := newBed(b)
	p := fixture(b, "multi.json")
	ctx := context.Background()
	const n = 200
	orders := make([]string, 0, n)
	for i := range n {
		q := p
		q.PayTransactionID = fmt.Sprintf("BENCH%06d", i)
		q.Orders = append([]customs.Order(nil), p.Orders...)
		for j := range q.Orders {
			q.Orders[j].OrderNo = fmt.Sprintf("B%06d-%d", i, j)
		}
		bed.record(b, q)
		orders = append(orders, q.Orders[1].OrderNo)
	}
	var i int
	for b.Loop() {
		b.StopTimer()
		id := fmt.Sprintf("bench-%d", i)
		r := ceb179.Request{SessionID: id, OrderNo: orders[i%n], ReceivedAt: received, Deadline: received.Add(ceb179.Window), State: ceb179.StateReceived}
		if _, _, err := bed.store.CreateRequest(ctx, r); err != nil {
			b.Fatal(err)
		}
		body := fmt.Sprintf(`{"sessionID":%q,"orderNo":%q,"receivedAt":%d,"deadline":%d}`, id, r.OrderNo, received.UnixMilli(), r.Deadline.UnixMilli())
		ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: id, Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
		i++
		b.StartTimer()
		resp, err := bed.h.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("%v %v", resp, err)
		}
	}
}
