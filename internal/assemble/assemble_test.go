package assemble_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/assemble"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/upload"
	"github.com/ceb179/ceb179/records"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// received is when the test requests reached ingest; assembly happens 1.5 s
// later, so the upload serviceTime in the golden files is fixed.
var received = time.UnixMilli(1_700_000_000_000)

// bed is one test's pipeline around the assemble handler: emulated tables
// and queues, the handler with a fixed clock, and its metrics.
type bed struct {
	store    *dynamo.Store
	assemble *queue.Queue
	sign     *queue.Queue
	metrics  *metrics.Recorder
	now      time.Time
	h        *assemble.Handler
}

func newBed(tb testing.TB) *bed {
	tb.Helper()
	env := awstest.New(tb)
	b := &bed{
		store: dynamo.New(env.DynamoDB, dynamo.Tables{
			Requests: env.Table("RequestsTable"),
			Payments: env.Table("PaymentsTable"),
		}, 0),
		assemble: queue.New(env.SQS, env.Queue("AssembleQueue")),
		sign:     queue.New(env.SQS, env.Queue("SignQueue")),
		metrics:  metrics.New("assemble", nil),
		now:      received.Add(1500 * time.Millisecond),
	}
	b.h = assemble.New(b.store, b.store, b.sign,
		assemble.WithVisibility(b.assemble),
		assemble.WithMetrics(b.metrics),
		assemble.WithClock(func() time.Time { return b.now }))
	return b
}

// fixture reads a payment of records/testdata.
func fixture(tb testing.TB, name string) records.Payment {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "records", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := records.ParsePayment(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// record stores payments without the field rules (as a faulty writer might).
func (b *bed) record(tb testing.TB, ps ...records.Payment) {
	tb.Helper()
	for i, err := range b.store.PutPayments(context.Background(), ps) {
		if err != nil {
			tb.Fatalf("payment %d: %v", i, err)
		}
	}
}

// request does what ingest does: record the request and queue it.
func (b *bed) request(tb testing.TB, sessionID, orderNo string) {
	tb.Helper()
	b.requestWith(tb, sessionID, orderNo, ceb179.PriorityNormal)
}

// requestWith is request with the priority ingest gave the request.
func (b *bed) requestWith(tb testing.TB, sessionID, orderNo string, prio ceb179.Priority) {
	tb.Helper()
	ctx := context.Background()
	r := ceb179.Request{SessionID: sessionID, OrderNo: orderNo, ServiceTime: received.UnixMilli() - 300,
		ReceivedAt: received, Deadline: received.Add(ceb179.Window), State: ceb179.StateReceived, Priority: prio}
	if _, created, err := b.store.CreateRequest(ctx, r); err != nil || !created {
		tb.Fatalf("CreateRequest: %v %v", created, err)
	}
	if err := b.assemble.Send(ctx, ceb179.NewAssembleMessage(r)); err != nil {
		tb.Fatal(err)
	}
}

// deliver receives the assemble queue's visible messages as Lambda would
// hand them over, waiting up to wait for the first one.
func (b *bed) deliver(tb testing.TB, wait time.Duration) events.SQSEvent {
	tb.Helper()
	msgs, err := b.assemble.Receive(context.Background(), 10, wait, 30*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	var ev events.SQSEvent
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: m.ID, ReceiptHandle: m.ReceiptHandle, Body: m.Body, EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount)},
		})
	}
	return ev
}

// handle runs the handler on ev and returns the failed message ids.
func (b *bed) handle(tb testing.TB, ev events.SQSEvent) []string {
	tb.Helper()
	resp, err := b.h.Handle(context.Background(), ev)
	if err != nil {
		tb.Fatalf("Handle returned an error: %v", err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// jobs drains the sign queue.
func (b *bed) jobs(tb testing.TB) []ceb179.SignJob {
	tb.Helper()
	var out []ceb179.SignJob
	for range 10 {
		// An explicit one-second wait: without one the queue's own long
		// poll (20 s) applies.
		msgs, err := b.sign.Receive(context.Background(), 10, time.Second, time.Minute)
		if err != nil {
			tb.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		for _, m := range msgs {
			if strings.Contains(m.Body, "initalRequest") || len(m.Body) > 300 {
				tb.Errorf("sign job carries payment data: %s", m.Body)
			}
			var j ceb179.SignJob
			if err := json.Unmarshal([]byte(m.Body), &j); err != nil {
				tb.Fatal(err)
			}
			out = append(out, j)
			if err := b.sign.Delete(context.Background(), m.ReceiptHandle); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}

// state returns the request's state and reason.
func (b *bed) state(tb testing.TB, sessionID string) (ceb179.State, string) {
	tb.Helper()
	r, err := b.store.GetRequest(context.Background(), sessionID)
	if err != nil {
		tb.Fatal(err)
	}
	return r.State, r.Reason
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs:\n got %s\nwant %s", name, got, want)
	}
}

func TestAssembleGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sessionID string
		orderNo   string
		fixture   string
		orders    int
	}{
		{name: "ok single order", sessionID: "fe2374-8fnejf97-32839218", orderNo: "ord201903040001", fixture: "single", orders: 1},
		{name: "ok multi order asked for the middle one", sessionID: "a1b2c3-multi-0001", orderNo: "ord-A-0001", fixture: "multi", orders: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t)
			b.record(t, fixture(t, tt.fixture+".json"))
			b.request(t, tt.sessionID, tt.orderNo)
			if failed := b.handle(t, b.deliver(t, time.Second)); len(failed) != 0 {
				t.Fatalf("failed: %v", failed)
			}
			p, err := b.store.GetPending(context.Background(), tt.sessionID)
			if err != nil {
				t.Fatal(err)
			}
			u := upload.Unsigned(p)
			golden(t, tt.fixture+".head.json", p.Head)
			golden(t, tt.fixture+".lists.json", p.Lists)
			golden(t, tt.fixture+".signsource.txt", u.SignSource())

			// The pending upload is exactly what customs will receive.
			if err := u.Check(); err != nil {
				t.Fatal(err)
			}
			doc, err := customs.ReadPayExInfoStr(u.PayExInfoStr("0300", "c2ln"))
			if err != nil {
				t.Fatal(err)
			}
			if err := doc.Decoded.Validate(); err != nil {
				t.Errorf("uploaded document breaks the rules: %v", err)
			}
			if len(doc.Decoded.Lists) != tt.orders {
				t.Errorf("%d orders in the lists, want %d", len(doc.Decoded.Lists), tt.orders)
			}
			if p.ServiceTime != strconv.FormatInt(b.now.UnixMilli(), 10) || !p.Deadline.Equal(received.Add(ceb179.Window)) {
				t.Errorf("serviceTime %s deadline %v", p.ServiceTime, p.Deadline)
			}
			if p.GUID != assemble.GUID(tt.sessionID, doc.Decoded.Head.PayTransactionID) || p.GUID != strings.ToUpper(p.GUID) {
				t.Errorf("guid %s", p.GUID)
			}

			sum := sha256.Sum256(u.SignSource())
			jobs := b.jobs(t)
			want := ceb179.SignJob{SessionID: tt.sessionID, EbpCode: "3301964J31", Deadline: received.Add(ceb179.Window).UnixMilli(), Digest: hex.EncodeToString(sum[:])}
			if len(jobs) != 1 || jobs[0] != want {
				t.Errorf("jobs %+v, want [%+v]", jobs, want)
			}
			if st, _ := b.state(t, tt.sessionID); st != ceb179.StateAssembled {
				t.Errorf("state %s", st)
			}
		})
	}
}

// TestAssembleCarriesPriority: a request over its order's daily cap gets a
// sign job of low priority; one within it, a job of normal priority.
func TestAssembleCarriesPriority(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	b.record(t, fixture(t, "multi.json"))
	b.requestWith(t, "prio-normal", "ord-A-0001", ceb179.PriorityNormal)
	b.requestWith(t, "prio-low", "ord-C-0003", ceb179.PriorityLow)
	for range 2 {
		if failed := b.handle(t, b.deliver(t, time.Second)); len(failed) != 0 {
			t.Fatalf("failed: %v", failed)
		}
	}
	got := map[string]ceb179.Priority{}
	for _, j := range b.jobs(t) {
		got[j.SessionID] = j.Priority
	}
	want := map[string]ceb179.Priority{"prio-normal": ceb179.PriorityNormal, "prio-low": ceb179.PriorityLow}
	if !maps.Equal(got, want) {
		t.Fatalf("sign jobs' priorities %v, want %v", got, want)
	}
}

func TestAssembleDuplicateDelivery(t *testing.T) {
	t.Parallel()
	t.Run("ok two copies at once", func(t *testing.T) {
		t.Parallel()
		b := newBed(t)
		b.record(t, fixture(t, "multi.json"))
		b.request(t, "dup-1", "ord-C-0003")
		ev := b.deliver(t, time.Second)
		if len(ev.Records) != 1 {
			t.Fatalf("%d messages", len(ev.Records))
		}
		// The same message twice in one batch, handled concurrently: one
		// pending upload, one sign job. A copy that found the job claimed by
		// the other comes back later and then finds the request assembled.
		twice := events.SQSEvent{Records: []events.SQSMessage{ev.Records[0], ev.Records[0]}}
		twice.Records[1].MessageId = "copy"
		failed := b.handle(t, twice)
		if len(failed) > 1 {
			t.Fatalf("failed: %v", failed)
		}
		first, err := b.store.GetPending(context.Background(), "dup-1")
		if err != nil {
			t.Fatal(err)
		}
		b.now = b.now.Add(3 * time.Second)
		if failed := b.handle(t, twice); len(failed) != 0 {
			t.Fatalf("later delivery failed: %v", failed)
		}
		again, _ := b.store.GetPending(context.Background(), "dup-1")
		if !bytes.Equal(first.Head, again.Head) || first.ServiceTime != again.ServiceTime || first.Digest != again.Digest {
			t.Error("a later delivery changed the pending upload")
		}
		jobs := b.jobs(t)
		if len(jobs) != 1 || jobs[0].Digest != first.Digest {
			t.Errorf("jobs %+v, want exactly one", jobs)
		}
		if got := b.metrics.Total(assemble.MetricDuplicate); got < 2 {
			t.Errorf("duplicate deliveries counted: %v", got)
		}
	})
	t.Run("ok sequential redeliveries", func(t *testing.T) {
		t.Parallel()
		b := newBed(t)
		b.record(t, fixture(t, "single.json"))
		b.request(t, "dup-2", "ord201903040001")
		ev := b.deliver(t, time.Second)
		for range 3 {
			if failed := b.handle(t, ev); len(failed) != 0 {
				t.Fatalf("failed: %v", failed)
			}
		}
		if jobs := b.jobs(t); len(jobs) != 1 {
			t.Errorf("%d jobs after three deliveries, want 1", len(jobs))
		}
		if got := b.metrics.Total(assemble.MetricDuplicate); got != 2 {
			t.Errorf("duplicates %v, want 2", got)
		}
	})
}

func TestAssembleCrashAfterPending(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	p := fixture(t, "single.json")
	b.record(t, p)
	b.request(t, "crash-1", "ord201903040001")
	// An earlier delivery stored PENDING and died before sending the job.
	req, err := b.store.GetRequest(context.Background(), "crash-1")
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := assemble.Build(req, p, received.Add(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, created, err := b.store.CreatePending(context.Background(), earlier); err != nil || !created {
		t.Fatalf("CreatePending: %v %v", created, err)
	}
	if failed := b.handle(t, b.deliver(t, time.Second)); len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	jobs := b.jobs(t)
	if len(jobs) != 1 || jobs[0].Digest != earlier.Digest {
		t.Errorf("jobs %+v, want one with the stored digest %s", jobs, earlier.Digest)
	}
	if st, _ := b.state(t, "crash-1"); st != ceb179.StateAssembled {
		t.Errorf("state %s", st)
	}
	if b.metrics.Total(assemble.MetricResent) != 1 {
		t.Error("resent job not counted")
	}
}

func TestAssembleCrashAfterClaim(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	p := fixture(t, "single.json")
	b.record(t, p)
	b.request(t, "crash-2", "ord201903040001")
	req, err := b.store.GetRequest(context.Background(), "crash-2")
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := assemble.Build(req, p, received.Add(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.store.CreatePending(context.Background(), earlier); err != nil {
		t.Fatal(err)
	}
	// An earlier delivery claimed the job at assembly time and died.
	if ok, err := b.store.ClaimSignJob(context.Background(), "crash-2", "dead", received.Add(300*time.Millisecond), assemble.SignJobLease); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	ev := b.deliver(t, time.Second)
	// Within the lease: wait.
	if failed := b.handle(t, ev); len(failed) != 1 {
		t.Fatalf("failed %v: want the message back while the claim holds", failed)
	}
	// After the lease: take over and send.
	b.now = received.Add(300*time.Millisecond + assemble.SignJobLease + time.Second)
	if failed := b.handle(t, ev); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if jobs := b.jobs(t); len(jobs) != 1 || jobs[0].Digest != earlier.Digest {
		t.Errorf("jobs %+v", jobs)
	}
	if st, _ := b.state(t, "crash-2"); st != ceb179.StateAssembled {
		t.Errorf("state %s", st)
	}
}

func TestAssembleLateRecord(t *testing.T) {
	t.Parallel()
	t.Run("ok unknown orders do not hold up the batch", func(t *testing.T) {
		t.Parallel()
		b := newBed(t)
		b.record(t, fixture(t, "multi.json"))
		for i := range 4 {
			b.request(t, fmt.Sprintf("unknown-%d", i), fmt.Sprintf("ord-nobody-%d", i))
		}
		b.request(t, "known-0", "ord-B-0002")
		var ev events.SQSEvent
		for len(ev.Records) < 5 {
			more := b.deliver(t, time.Second)
			if len(more.Records) == 0 {
				t.Fatalf("only %d messages delivered", len(ev.Records))
			}
			ev.Records = append(ev.Records, more.Records...)
		}
		start := time.Now()
		failed := b.handle(t, ev)
		took := time.Since(start)
		if len(failed) != 4 {
			t.Fatalf("failed %v, want the four unknown orders back", failed)
		}
		if st, _ := b.state(t, "known-0"); st != ceb179.StateAssembled {
			t.Errorf("known order %s", st)
		}
		// No sleeping inside the invocation: the batch is back at once.
		if took > 5*time.Second {
			t.Errorf("batch took %v", took)
		}
		// The unknown orders come back after their first short delay.
		time.Sleep(assemble.DefaultRetryFirst + 300*time.Millisecond)
		if again := b.deliver(t, time.Second); len(again.Records) == 0 {
			t.Error("unknown orders not back after the first retry delay")
		}
	})
	t.Run("ok record arrives after the invocation", func(t *testing.T) {
		t.Parallel()
		b := newBed(t)
		b.request(t, "late-1", "ord-B-0002")
		ev := b.deliver(t, time.Second)
		if failed := b.handle(t, ev); len(failed) != 1 || failed[0] != ev.Records[0].MessageId {
			t.Fatalf("failed %v, want the message back", failed)
		}
		if st, _ := b.state(t, "late-1"); st != ceb179.StateReceived {
			t.Errorf("state %s", st)
		}
		// The record arrives; the message comes back after a second, not
		// after the visibility timeout of its receive (30 s).
		b.record(t, fixture(t, "multi.json"))
		time.Sleep(1200 * time.Millisecond)
		ev = b.deliver(t, time.Second)
		if len(ev.Records) != 1 {
			t.Fatalf("redelivery: %d messages", len(ev.Records))
		}
		if ev.Records[0].Attributes["ApproximateReceiveCount"] != "2" {
			t.Errorf("receive count %s", ev.Records[0].Attributes["ApproximateReceiveCount"])
		}
		b.now = b.now.Add(2 * time.Second)
		if failed := b.handle(t, ev); len(failed) != 0 {
			t.Fatalf("failed: %v", failed)
		}
		if jobs := b.jobs(t); len(jobs) != 1 {
			t.Errorf("%d jobs", len(jobs))
		}
		if b.metrics.Total(assemble.MetricNotYetFound) != 1 || b.metrics.Total(assemble.MetricAssembled) != 1 {
			t.Errorf("metrics %v", b.metrics.Names())
		}
	})
}

func TestAssembleUnknownOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		now      time.Time
		receives string
		reason   string
	}{
		{name: "ok at the deadline", now: received.Add(ceb179.Window), receives: "1", reason: "no payment record for the order before the deadline"},
		{name: "ok at the last receive the queue allows", now: received.Add(100 * time.Second), receives: strconv.Itoa(assemble.MaxReceives), reason: "no payment record for the order at the last delivery the queue allows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t)
			b.request(t, "unknown-1", "ord-nobody")
			ev := b.deliver(t, time.Second)
			ev.Records[0].Attributes["ApproximateReceiveCount"] = tt.receives
			b.now = tt.now
			resp, err := b.h.Handle(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failed %v %v: the request must be finished", resp.BatchItemFailures, err)
			}
			st, reason := b.state(t, "unknown-1")
			if st != ceb179.StateNoData || reason != tt.reason {
				t.Errorf("state %s %q, want NO_DATA %q", st, reason, tt.reason)
			}
			if _, err := b.store.GetPending(context.Background(), "unknown-1"); err == nil {
				t.Error("a pending upload was stored without data")
			}
			if jobs := b.jobs(t); len(jobs) != 0 {
				t.Errorf("jobs %+v", jobs)
			}
			if b.metrics.Total(assemble.MetricNoData) != 1 {
				t.Error("NO_DATA not counted")
			}
		})
	}
}

func TestAssembleInvalidRecord(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	p := fixture(t, "multi.json")
	p.VerDept = "9"
	p.Orders[2].RecpName = ""
	b.record(t, p) // the store does not check: a faulty writer
	b.request(t, "invalid-1", "ord-A-0001")
	if failed := b.handle(t, b.deliver(t, time.Second)); len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	st, reason := b.state(t, "invalid-1")
	want := `payExchangeInfoHead.verDept: must be "1", "2" or "3"; payExchangeInfoLists[2].recpName: required`
	if st != ceb179.StateInvalid || reason != want {
		t.Errorf("state %s reason %q, want INVALID %q", st, reason, want)
	}
	if b.metrics.Total(assemble.MetricInvalid) != 1 || b.metrics.Total(assemble.MetricAssembled) != 0 {
		t.Errorf("metrics Invalid %v Assembled %v, want 1 and 0", b.metrics.Total(assemble.MetricInvalid), b.metrics.Total(assemble.MetricAssembled))
	}
	if jobs := b.jobs(t); len(jobs) != 0 {
		t.Errorf("jobs %+v", jobs)
	}
}

func TestAssembleMalformedMessage(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: `{"orderNo":"x"}`},
		{MessageId: "m2", Body: `not json`},
	}}
	if failed := b.handle(t, ev); len(failed) != 2 {
		t.Errorf("failed %v, want both", failed)
	}
	if b.metrics.Total(assemble.MetricMalformed) != 2 {
		t.Error("malformed messages not counted")
	}
}
