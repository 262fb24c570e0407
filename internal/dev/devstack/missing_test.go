package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/localalarm"
	"github.com/ceb179/ceb179/internal/settle"
	"github.com/ceb179/ceb179/records"
)

// localPayment is the fixture payment of records/testdata for order no.
func localPayment(t *testing.T, no string) records.Payment {
	t.Helper()
	raw, err := os.ReadFile("../../../records/testdata/single.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := records.ParsePayment(raw)
	if err != nil {
		t.Fatal(err)
	}
	p.PayTransactionID, p.Orders[0].OrderNo = "PAY-"+no, no
	p.TradingTime = records.FormatTradingTime(time.Now())
	return p
}

// post sends body to path of the stack and decodes the batch answer.
func post(t *testing.T, s *Stack, path, contentType, body string) records.BatchAnswer {
	t.Helper()
	resp, err := http.Post(s.URL+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a records.BatchAnswer
	if err := json.Unmarshal(b, &a); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return a
}

// TestMissingAlarm declares 20 orders through POST /orders of the local
// stack: 5 paid before their declaration, 3 paid after it within the
// grace, 12 never. Within the grace nothing is missing; after it the
// settler's Missing metric says 12 and SettleMissingAlarm (as the template
// defines it) fires, listed on the status page; once their records are
// imported, the next run clears it.
func TestMissingAlarm(t *testing.T) {
	var journey syncWriter
	const grace = 3 * time.Second
	s := startStack(t, Options{NoDemo: true, SettleEvery: -1, MissingGrace: grace, Journey: &journey})
	ctx := context.Background()
	no := func(i int) string { return fmt.Sprintf("MIS-%02d", i) }
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			l, err := localPayment(t, no(i)).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			b.Write(append(l, '\n'))
		}
		return b.String()
	}

	if a := post(t, s, "/payments", "application/x-ndjson", lines(0, 5)); a.Counts[records.Recorded] != 5 {
		t.Fatalf("payments %+v", a)
	}
	var orders strings.Builder
	for i := range 20 {
		fmt.Fprintf(&orders, "{\"orderNo\":%q}\n", no(i))
	}
	if a := post(t, s, "/orders", "application/x-ndjson", orders.String()); a.Counts[records.Declared] != 20 {
		t.Fatalf("orders %+v", a)
	}
	declared := time.Now()
	if a := post(t, s, "/payments", "application/x-ndjson", lines(5, 8)); a.Counts[records.Recorded] != 3 {
		t.Fatalf("payments %+v", a)
	}
	// The sparse index holds only what is open: paid orders left it.
	if open, _, err := s.Store.OpenOrders(ctx, time.Now().Add(time.Hour), 100); err != nil || len(open) != 12 {
		t.Fatalf("open declared orders %d (%v), want 12", len(open), err)
	}

	rep, err := s.Settle(ctx)
	if err != nil || rep.Missing == nil || rep.Missing.Missing != 0 {
		t.Fatalf("within the grace: %+v %v", rep.Missing, err)
	}
	if st, _ := s.Alarm(AlarmMissing); st != localalarm.StateOK {
		t.Errorf("alarm within the grace: %s", st)
	}

	time.Sleep(time.Until(declared.Add(grace + 100*time.Millisecond)))
	rep, err = s.Settle(ctx)
	if err != nil || rep.Missing.Missing != 12 || rep.Missing.Orders[0].OrderNo != no(8) {
		t.Fatalf("after the grace: %+v %v", rep.Missing, err)
	}
	if st, v := s.Alarm(AlarmMissing); st != localalarm.StateAlarm || v != 12 {
		t.Errorf("alarm after the grace: %s %v, want ALARM 12", st, v)
	}
	if got := s.Metrics["settle"].Total(settle.MetricMissing); got != 12 {
		t.Errorf("metric %s total %v, want 12", settle.MetricMissing, got)
	}
	resp, err := http.Get(s.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `<span id="missing">12</span>`) || !strings.Contains(string(page), no(19)) {
		t.Errorf("status page does not list the 12 missing orders")
	}

	sum, err := records.Import(ctx, strings.NewReader(lines(8, 20)), s.Store, records.ImportOptions{})
	if err != nil || sum.Imported != 12 {
		t.Fatalf("import: %+v %v", sum, err)
	}
	rep, err = s.Settle(ctx)
	if err != nil || rep.Missing.Missing != 0 {
		t.Fatalf("after the import: %+v %v", rep.Missing, err)
	}
	if st, v := s.Alarm(AlarmMissing); st != localalarm.StateOK || v != 0 {
		t.Errorf("alarm after the import: %s %v, want OK 0", st, v)
	}
	if open, _, err := s.Store.OpenOrders(ctx, time.Now(), 100); err != nil || len(open) != 0 {
		t.Errorf("open declared orders after the import: %d %v", len(open), err)
	}
	j := journey.String()
	if !strings.Contains(j, "⚠ ALARM SettleMissingAlarm: 12 declared orders without a payment record after 3s") ||
		!strings.Contains(j, "✓ OK SettleMissingAlarm: 0 declared orders") {
		t.Errorf("journey:\n%s", j)
	}
}
