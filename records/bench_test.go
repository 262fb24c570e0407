package records_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/paymentsapi"
	"github.com/ceb179/ceb179/records"
)

var benchRun atomic.Int64

// benchPayments returns n single-order payments with identifiers unique in
// this process.
func benchPayments(tb testing.TB, n int) []records.Payment {
	tb.Helper()
	run := benchRun.Add(1)
	base := mustParse(tb, "single.json")
	base.TradingTime = records.FormatTradingTime(time.Now())
	ps := make([]records.Payment, n)
	for i := range ps {
		p := base
		p.PayTransactionID = fmt.Sprintf("BENCH-%d-%08d", run, i)
		p.Orders = []records.Order{base.Orders[0]}
		p.Orders[0].OrderNo = fmt.Sprintf("BENCH-ORD-%d-%08d", run, i)
		ps[i] = p
	}
	return ps
}

// BenchmarkRecordPayments records payments into the payments table on the
// emulator four ways and reports payments/s: the Go package's Recorder one
// payment per call (8 callers at once), its RecordBatch (100 a call), the
// payments API's batches (the real handler over HTTP, through the Go
// Client with SigV4), and Import, which `ceb179 import` runs (batches of
// 100, 4 writers). Run with a fixed count, for example -benchtime 2000x.
func BenchmarkRecordPayments(b *testing.B) {
	env := awstest.New(b)
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Payments: env.Table("PaymentsTable")}, 0)
	rec := records.NewRecorder(store)
	ctx := context.Background()
	report := func(b *testing.B, n int, start time.Time) {
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "payments/s")
	}
	check := func(b *testing.B, out []records.Outcome) {
		for _, o := range out {
			if o.Result != records.Recorded {
				b.Fatalf("%+v", o)
			}
		}
	}

	b.Run("recorder", func(b *testing.B) {
		ps := benchPayments(b, b.N)
		var next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(ps); i = int(next.Add(1) - 1) {
					if res, err := rec.Record(ctx, ps[i]); res != records.Recorded || err != nil {
						b.Error(res, err)
						return
					}
				}
			})
		}
		wg.Wait()
		report(b, len(ps), start)
	})
	b.Run("recorder batch", func(b *testing.B) {
		ps := benchPayments(b, b.N)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < len(ps); i += records.MaxBatch {
			out, _ := rec.RecordBatch(ctx, ps[i:min(len(ps), i+records.MaxBatch)])
			check(b, out)
		}
		report(b, len(ps), start)
	})
	b.Run("batch API", func(b *testing.B) {
		srv := httptest.NewServer(paymentsapi.NewHandler(rec, store, slog.New(slog.NewTextHandler(io.Discard, nil))))
		defer srv.Close()
		c, err := records.NewClient(srv.URL+"/payments", testConfig(testSecret))
		if err != nil {
			b.Fatal(err)
		}
		ps := benchPayments(b, b.N)
		b.ResetTimer()
		start := time.Now()
		out, err := c.RecordBatch(ctx, ps)
		if err != nil {
			b.Fatal(err)
		}
		check(b, out)
		report(b, len(ps), start)
	})
	b.Run("import", func(b *testing.B) {
		ps := benchPayments(b, b.N)
		var in strings.Builder
		for _, p := range ps {
			line, _ := p.MarshalJSON()
			in.Write(append(line, '\n'))
		}
		b.ResetTimer()
		start := time.Now()
		sum, err := records.Import(ctx, strings.NewReader(in.String()), store, records.ImportOptions{})
		if err != nil || sum.Imported != len(ps) {
			b.Fatal(sum, err)
		}
		report(b, len(ps), start)
	})
}
