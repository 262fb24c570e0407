package ingest

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/queue"
)

func openReqBody(i int) string {
	return url.Values{"openReq": {fmt.Sprintf(`{"orderNo":"ORD%08d","sessionID":"BENCH-%d-%d","serviceTime":1533271903898}`, i, time.Now().UnixNano(), i)}}.Encode()
}

// BenchmarkHandler measures the handler alone: parsing, bookkeeping and the
// answer, with in-memory storage and queue.
func BenchmarkHandler(b *testing.B) {
	h := New(newMemStore(), &memQueue{}, WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	bodies := make([]string, 4096)
	for i := range bodies {
		bodies[i] = openReqBody(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(bodies[i%len(bodies)]))
		r.Header.Set("Content-Type", formType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		i++
	}
}

// BenchmarkAckLatency offers requests at a fixed rate to the handler served
// over HTTP on loopback, recording into the emulated DynamoDB and SQS, and
// reports the p50 and p99 time to the answer. Each iteration is one request;
// the rate, not the machine, sets the pace.
func BenchmarkAckLatency(b *testing.B) {
	for _, rate := range []int{200} {
		b.Run(fmt.Sprintf("rate=%d/s", rate), func(b *testing.B) {
			env := awstest.New(b)
			store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable")}, 0)
			h := New(store, queue.New(env.SQS, env.Queue("AssembleQueue")), WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

			var (
				mu        sync.Mutex
				latencies []time.Duration
				failures  int
				wg        sync.WaitGroup
			)
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			i := 0
			for b.Loop() {
				<-tick.C
				body := openReqBody(i)
				i++
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					resp, err := client.Post(srv.URL+Path, formType, strings.NewReader(body))
					d := time.Since(start)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failures++
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failures++
						return
					}
					latencies = append(latencies, d)
				}()
			}
			wg.Wait()
			if failures > 0 {
				b.Fatalf("%d of %d requests failed", failures, i)
			}
			slices.Sort(latencies)
			b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
		})
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
