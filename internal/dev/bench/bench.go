// Package bench measures the whole ceb179 pipeline on one machine: it starts
// a local stack (package devstack), plays customs calling platDataOpen at a
// given schedule, and reports acknowledgement latency, end-to-end latency,
// uploads and how many arrived on time. The scenarios are those of the
// project's goals; a compression factor runs the card-speed ones in a
// fraction of the time, with every duration and rate scaled alike.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/records"
)

// CardRate is an E-Port card's signing rate, in signatures per minute.
const CardRate = 250

// Scenario is one load to offer the pipeline.
type Scenario struct {
	// Name labels the scenario in the table.
	Name string
	// Requests is how many customs requests are sent.
	Requests int
	// Over spreads the requests evenly over this time; zero sends them all
	// at once (a burst, with Concurrency calls in flight).
	Over time.Duration
	// Concurrency bounds the calls in flight during a burst (default 64).
	Concurrency int
	// Signers is the number of signers (default 1).
	Signers int
	// SignRate limits each signer to this many signatures per minute; zero
	// is a key file at machine speed.
	SignRate float64
	// Window is how long each upload may take (default two minutes).
	Window time.Duration
	// Drain is how long to wait after the last request for late uploads
	// (default: twice the window).
	Drain time.Duration
	// Compress divides every duration and multiplies every rate; 1 (or 0)
	// runs in real time.
	Compress float64
	// Unknown is the fraction (0..1) of requests, spread evenly, for orders
	// the platform has no record of: they end NO_DATA at their deadline and
	// must not delay the others. Latencies are of the known orders only.
	Unknown float64
	// UnknownFirst requests for unknown orders are sent at once before the
	// others (and counted in Requests).
	UnknownFirst int
	// OverCap is the fraction (0..1) of requests over their order's daily
	// cap (ceb179.DefaultDailyCap): the requests go round-robin to as few
	// orders as leave that share past the cap. The stack has no allowlist
	// (as deployed by default), so they are capped: signed after the
	// others, and uploaded too.
	OverCap float64
}

// Result is what one scenario measured.
type Result struct {
	Scenario Scenario
	// Sent and Acked count the requests sent and answered 10000.
	Sent, Acked int
	// Known counts the requests for recorded orders: Uploads and OnTime
	// are out of these.
	Known int
	// AckLatency and EndToEnd are sorted samples, in wall-clock time (so
	// in compressed time for a compressed scenario).
	AckLatency, EndToEnd []time.Duration
	// Uploads counts sessions uploaded and accepted by customs; OnTime those
	// accepted within the window.
	Uploads, OnTime int
	// PhysicalMax is the most requests the signers could possibly finish
	// on time, and FIFO how many first-in-first-out signing would, for
	// card-speed scenarios (zero otherwise).
	PhysicalMax, FIFO int
	// Cap splits the requests by their orders' daily cap, as the stack
	// recorded them (a scenario with OverCap; zero otherwise).
	Cap CapCounts
	// Took is the scenario's wall-clock time.
	Took time.Duration
}

// scaled returns the scenario with durations divided and rates multiplied
// by its compression factor.
func (s Scenario) scaled() Scenario {
	if s.Compress <= 1 {
		s.Compress = 1
	}
	if s.Window == 0 {
		s.Window = 120 * time.Second
	}
	if s.Drain == 0 {
		s.Drain = 2 * s.Window
	}
	if s.Signers == 0 {
		s.Signers = 1
	}
	if s.Concurrency == 0 {
		s.Concurrency = 64
	}
	k := s.Compress
	div := func(d time.Duration) time.Duration { return time.Duration(float64(d) / k) }
	s.Over, s.Window, s.Drain = div(s.Over), div(s.Window), div(s.Drain)
	s.SignRate *= k
	return s
}

// Run runs one scenario on a fresh local stack. prefix names its tables.
func Run(ctx context.Context, sc Scenario, prefix string) (Result, error) {
	run := sc.scaled()
	// The development key pair of a bench run is its own, in a temp dir:
	// never written into the working directory.
	dir, err := os.MkdirTemp("", "ceb179-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	st, err := devstack.Start(ctx, devstack.Options{
		Listen:   "127.0.0.1:0",
		DataDir:  dir,
		Prefix:   prefix,
		Window:   run.Window,
		Signers:  run.Signers,
		SignRate: run.SignRate,
		NoDemo:   true,
	})
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	// The stack signs ceb179.DefaultDailyCap requests per order and day
	// first, as deployed: each order is asked for at most that often, so
	// that the scenario measures the pipeline, not the cap, unless the
	// scenario asks for requests over it. (No more orders than that: the
	// emulator's Query reads every item of a table.)
	norders := ordersFor(sc.Requests)
	if sc.OverCap > 0 {
		norders = max(int(float64(sc.Requests)*(1-sc.OverCap)+0.5)/ceb179.DefaultDailyCap, 1)
	}
	orders, err := seed(ctx, st, 0, norders)
	if err != nil {
		return Result{}, err
	}

	res := Result{Scenario: sc}
	if sc.SignRate > 0 {
		res.PhysicalMax, res.FIFO = Capacity(run.Requests, run.Over, run.Window, run.Signers, run.SignRate)
	}
	started := time.Now()
	offer(ctx, st, run, orders, "BENCH", &res)
	if sc.OverCap > 0 {
		if res.Cap, err = capCounts(ctx, st, started); err != nil {
			return res, err
		}
	}
	return res, nil
}

// CapCounts splits a scenario's requests by their orders' daily cap.
type CapCounts struct {
	// InCap counts the requests within the cap; InCapUploaded those
	// accepted by customs, InCapOnTime those accepted by their deadline.
	InCap, InCapUploaded, InCapOnTime int
	// Over counts the requests over the cap (signed with the low
	// priority); OverUploaded and OverOnTime as above.
	Over, OverUploaded, OverOnTime int
	// InCapEndToEnd and OverEndToEnd are the sorted times from receipt to
	// the accepted post of the uploaded ones.
	InCapEndToEnd, OverEndToEnd []time.Duration
}

// capCounts splits the requests the stack received since start by the
// priority it recorded, and counts when customs (the simulator, as for
// the main table: the upload function records the outcome just after)
// accepted each.
func capCounts(ctx context.Context, st *devstack.Stack, start time.Time) (CapCounts, error) {
	var c CapCounts
	accepted := acceptedAt(st.Sim)
	days := []string{ceb179.Day(start)}
	if d := ceb179.Day(time.Now()); d != days[0] {
		days = append(days, d)
	}
	for _, day := range days {
		err := st.Store.RequestsOfDay(ctx, day, func(v ceb179.RequestView) error {
			if v.ReceivedAt.Before(start) {
				return nil
			}
			at, uploaded := accepted[v.SessionID]
			onTime := uploaded && !at.After(v.Deadline)
			e2e := at.Sub(v.ReceivedAt)
			if v.Priority == ceb179.PriorityNormal {
				c.InCap++
				c.InCapUploaded += b2i(uploaded)
				c.InCapOnTime += b2i(onTime)
				if uploaded {
					c.InCapEndToEnd = append(c.InCapEndToEnd, e2e)
				}
			} else {
				c.Over++
				c.OverUploaded += b2i(uploaded)
				c.OverOnTime += b2i(onTime)
				if uploaded {
					c.OverEndToEnd = append(c.OverEndToEnd, e2e)
				}
			}
			return nil
		})
		if err != nil {
			return c, fmt.Errorf("bench: read the requests of %s: %w", day, err)
		}
	}
	slices.Sort(c.InCapEndToEnd)
	slices.Sort(c.OverEndToEnd)
	return c, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// offer sends run's requests to the stack at its schedule, waits for their
// uploads up to run.Drain after the last one, and fills in res. tag names
// the sessions.
func offer(ctx context.Context, st *devstack.Stack, run Scenario, orders []string, tag string, res *Result) {
	already := acceptedCount(st.Sim)
	start := time.Now()
	calls := sendRequests(ctx, st.URL, run, orders, tag, start)
	// Wait for the uploads of the known orders, up to the drain time after
	// the last request.
	want := 0
	for _, c := range calls {
		if c.ok && !c.unknown {
			want++
		}
	}
	deadline := time.Now().Add(run.Drain)
	for time.Now().Before(deadline) && acceptedCount(st.Sim) < already+want && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	res.Took = time.Since(start)
	res.count(calls, acceptedAt(st.Sim), run.Window)
}

// call is one customs request a run sent.
type call struct {
	sid     string
	sent    time.Time
	ack     time.Duration
	ok      bool
	unknown bool
}

// sendRequests sends run's requests to the stack at base: first the UnknownFirst
// at once, then the rest spread over run.Over, or as a burst of
// run.Concurrency calls in flight. Sessions are named by tag and start.
func sendRequests(ctx context.Context, base string, run Scenario, orders []string, tag string, start time.Time) []call {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	calls := make([]call, run.Requests)
	var wg sync.WaitGroup
	var next atomic.Int64
	one := func(i int) {
		defer wg.Done()
		c := call{sid: fmt.Sprintf("%s-%d-%06d", tag, start.UnixNano(), i), unknown: i < run.UnknownFirst || unknownAt(i, run.Unknown)}
		order := fmt.Sprintf("%s-UNKNOWN-%06d", tag, i)
		if !c.unknown {
			order = orders[int(next.Add(1))%len(orders)]
		}
		c.sent = time.Now()
		c.ok = platDataOpen(ctx, client, base, order, c.sid) == customs.CodeSuccess
		c.ack = time.Since(c.sent)
		calls[i] = c
	}
	first := min(run.UnknownFirst, run.Requests)
	for i := range first {
		wg.Add(1)
		go one(i)
	}
	wg.Wait()
	sem := make(chan struct{}, run.Concurrency)
	rest := run.Requests - first
	for i := first; i < run.Requests; i++ {
		if run.Over > 0 {
			at := start.Add(time.Duration(float64(run.Over) * float64(i-first) / float64(rest)))
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
		} else {
			sem <- struct{}{}
		}
		wg.Add(1)
		go func() {
			if run.Over == 0 {
				defer func() { <-sem }()
			}
			one(i)
		}()
	}
	wg.Wait()
	return calls
}

// acceptedAt is when customs first accepted each session's upload.
func acceptedAt(sim *customssim.Sim) map[string]time.Time {
	at := map[string]time.Time{}
	for _, u := range sim.Uploads() {
		if u.Accepted() {
			if _, ok := at[u.SessionID]; !ok {
				at[u.SessionID] = u.At
			}
		}
	}
	return at
}

// count fills in the counts and sorted latencies of calls, given when each
// session was uploaded and the window of an upload on time.
func (res *Result) count(calls []call, uploaded map[string]time.Time, window time.Duration) {
	for _, c := range calls {
		res.Sent++
		if !c.ok {
			continue
		}
		res.Acked++
		res.AckLatency = append(res.AckLatency, c.ack)
		if c.unknown {
			continue
		}
		res.Known++
		if at, ok := uploaded[c.sid]; ok {
			res.Uploads++
			e2e := at.Sub(c.sent)
			res.EndToEnd = append(res.EndToEnd, e2e)
			if e2e <= window {
				res.OnTime++
			}
		}
	}
	slices.Sort(res.AckLatency)
	slices.Sort(res.EndToEnd)
}

// unknownAt reports whether request i is for an unknown order when a
// fraction share of them are, spread evenly (3 in every 10 for 0.3).
func unknownAt(i int, share float64) bool {
	if share <= 0 {
		return false
	}
	return int(float64(i+1)*share) > int(float64(i)*share)
}

func acceptedCount(sim *customssim.Sim) int {
	n := 0
	for _, u := range sim.Uploads() {
		if u.Accepted() {
			n++
		}
	}
	return n
}

// platDataOpen calls the stack like customs does and returns the ack code.
func platDataOpen(ctx context.Context, c *http.Client, base, orderNo, sessionID string) string {
	open, _ := json.Marshal(customs.OpenReq{OrderNo: orderNo, SessionID: sessionID, ServiceTime: time.Now().UnixMilli()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/platDataOpen", strings.NewReader(url.Values{"openReq": {string(open)}}.Encode()))
	if err != nil {
		return ""
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", customssim.UserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ack customs.Ack
	_ = json.Unmarshal(b, &ack)
	return ack.Code
}

// seed records n single-order payments and returns their orders.
func seed(ctx context.Context, st *devstack.Stack, from, n int) ([]string, error) {
	base := devstack.DemoPayments(st.EbpCode, time.Now())[0]
	ps := make([]records.Payment, n)
	orders := make([]string, n)
	for i := range ps {
		p := base
		p.PayTransactionID = fmt.Sprintf("BENCHPAY%020d", from+i)
		o := base.Orders[0]
		o.OrderNo = fmt.Sprintf("BENCH-ORDER-%05d", from+i)
		p.Orders = []customs.Order{o}
		ps[i], orders[i] = p, o.OrderNo
	}
	for i, err := range st.Store.PutPayments(ctx, ps) {
		if err != nil {
			return nil, fmt.Errorf("seed payment %d: %w", i, err)
		}
	}
	return orders, nil
}

// ordersFor is how many distinct orders n requests need so that none is
// asked more than the daily cap allows (a request over it is signed after
// the others).
func ordersFor(n int) int {
	return max((n+ceb179.DefaultDailyCap-1)/ceb179.DefaultDailyCap, 1)
}

// Capacity returns, for requests arriving evenly over `over`, each due
// `window` after it arrives, and signers each signing rate per minute one
// at a time: the most that can be signed on time (signers skip requests
// that can no longer make it and come back to them later), and how many
// first-in-first-out signing gets on time.
func Capacity(requests int, over, window time.Duration, signers int, rate float64) (maxOnTime, fifo int) {
	rates := make([]float64, signers)
	for i := range rates {
		rates[i] = rate
	}
	return CapacityRates(requests, over, window, rates)
}

// CapacityRates is Capacity for signers of different speeds: rates holds
// each signer's signatures per minute.
func CapacityRates(requests int, over, window time.Duration, rates []float64) (maxOnTime, fifo int) {
	service := make([]time.Duration, len(rates))
	for i, r := range rates {
		service[i] = time.Duration(float64(time.Minute) / r)
	}
	arrival := func(i int) time.Duration { return time.Duration(float64(over) * float64(i) / float64(requests)) }
	simulate := func(skipHopeless bool) int {
		free := make([]time.Duration, len(rates))
		onTime := 0
		for i := range requests {
			// The signer that would finish it first takes the next
			// request (with equal signers: the one that frees up first).
			k := 0
			for j := range free {
				if max(free[j], arrival(i))+service[j] < max(free[k], arrival(i))+service[k] {
					k = j
				}
			}
			begin := max(free[k], arrival(i))
			if begin+service[k] <= arrival(i)+window {
				onTime++
			} else if skipHopeless {
				continue // signed after the others, late
			}
			free[k] = begin + service[k]
		}
		return onTime
	}
	return simulate(true), simulate(false)
}

// Percentile returns the p-th fraction (0..1) of sorted samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
