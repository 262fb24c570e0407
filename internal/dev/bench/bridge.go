package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/dev/devstack"
)

// BridgeRun is a real-time run against the signers of an hsmbridge
// configuration: a platform's own cards or cipher machine.
type BridgeRun struct {
	// Name labels the run in the table.
	Name string
	// Config is the hsmbridge configuration; its status endpoint is moved
	// to a free loopback port for the run.
	Config *bridge.Config
	// Load is the offered load as a multiple of the signers' measured
	// rate (default 3).
	Load float64
	// Requests, when set, is how many requests to send instead of Load
	// times the measured rate over Over.
	Requests int
	// Over spreads the requests evenly over this time (default 120 s).
	Over time.Duration
	// Window is how long each upload may take (default two minutes).
	Window time.Duration
	// MinSteady is how many back-to-back signatures of each signer the
	// warm-up measures at least (default 30).
	MinSteady int
	// MinSpan is how long each signer's back-to-back signatures span at
	// least in the warm-up, unless MaxWarmup is reached (default 15 s
	// times Scale: a quick look measures for less time, never on fewer
	// than MinSteady signatures).
	MinSpan time.Duration
	// MaxWarmup bounds the warm-up's requests (default 2,000): a signer as
	// fast as a key file is measured on that many.
	MaxWarmup int
	// WarmupLimit bounds the warm-up's time (default three minutes).
	WarmupLimit time.Duration
	// Scale shrinks the request count, Over and Window alike, for a quick
	// look (default 1).
	Scale float64
	// MaxRequests bounds the request count (default 20,000): signers as
	// fast as a key file would otherwise ask for millions.
	MaxRequests int
	// OnRun, when set, is called once the warm-up has measured the rates,
	// just before the run's first request.
	OnRun func(sc Scenario, rates []SignerRate)
}

// SignerRate is one signer's measured speed.
type SignerRate struct {
	// Name is the signer's name.
	Name string
	// PerMinute is the rate the bounds use: Warmup's, or Run's when the
	// signer drifted.
	PerMinute float64
	// Slots is how many signatures the signer makes at once.
	Slots int
	// Warmup is the steady rate the warm-up measured.
	Warmup Rate
	// Run is the steady rate during the run, from the signatures the
	// bridge recorded while the run's requests were signed.
	Run Rate
	// Drifted says the run's rate differs from the warm-up's by more than
	// DriftTolerance and both spreads: the signer sped up or slowed down.
	Drifted bool
}

// BridgeResult is what a BridgeRun measured.
type BridgeResult struct {
	Result
	// Rates are the measured rates of the signers the load went to.
	Rates []SignerRate
	// EbpCode is the platform code of the load (that of the first signer).
	EbpCode string
	// Warmup counts the warm-up's requests.
	Warmup int
	// WarmupMax is the most possible on time at the warm-up's rates; it
	// differs from PhysicalMax when a signer drifted.
	WarmupMax int
	// Needed is how many signers at the mean measured rate would put
	// every request of the run on time (0: more than a thousand).
	Needed int
}

// Drifted reports whether a signer's rate drifted during the run.
func (r BridgeResult) Drifted() bool {
	for _, s := range r.Rates {
		if s.Drifted {
			return true
		}
	}
	return false
}

// RunBridge measures the steady rate of the signers of r.Config, the ones
// of its first signer's ebpCode, by a warm-up through the whole pipeline
// that keeps them busy, then offers them r.Load times that rate in real
// time (a card is a card: no compression) and counts the uploads on time,
// next to the most the measured rates allow on time and what
// first-in-first-out signing would get. It measures the rates again from
// the signatures made during the run: when a signer drifted, the bounds
// use the run's rate. It waits for uploads until the last request's
// deadline.
func RunBridge(ctx context.Context, r BridgeRun, prefix string) (BridgeResult, error) {
	if r.Config == nil {
		return BridgeResult{}, errors.New("bench: no hsmbridge configuration")
	}
	r = r.withDefaults()
	over := time.Duration(float64(r.Over) * r.Scale)
	window := time.Duration(float64(r.Window) * r.Scale)

	cfg := *r.Config
	cfg.StatusAddr = "127.0.0.1:0"
	dir, err := os.MkdirTemp("", "ceb179-bench-")
	if err != nil {
		return BridgeResult{}, err
	}
	defer os.RemoveAll(dir)
	st, err := devstack.Start(ctx, devstack.Options{
		Listen: "127.0.0.1:0", DataDir: dir, Prefix: prefix, Window: window, NoDemo: true, BridgeConfig: &cfg,
	})
	if err != nil {
		return BridgeResult{}, err
	}
	defer st.Close()
	res := BridgeResult{EbpCode: st.EbpCode}
	if _, err := waitHealthy(ctx, st, cfg.ProbeInterval); err != nil {
		return res, err
	}
	log := newSignatureLog(st)
	w, err := warmUp(ctx, st, r, window, log)
	if err != nil {
		return res, err
	}
	res.Rates, res.Warmup = w.rates, w.requests
	sc := r.scenario(len(res.Rates), totalRate(res.Rates), over, window)
	res.Result = Result{Scenario: sc}
	res.PhysicalMax, res.FIFO = CapacityRates(sc.Requests, over, window, perMinute(res.Rates))
	res.WarmupMax = res.PhysicalMax
	// Orders of their own, each asked no more than the daily cap allows.
	orders, err := seed(ctx, st, w.orders, ordersFor(sc.Requests))
	if err != nil {
		return res, err
	}
	if r.OnRun != nil {
		r.OnRun(sc, res.Rates)
	}
	runStart := time.Now()
	stopFollow := follow(ctx, log, names(res.Rates))
	offer(ctx, st, sc, orders, "BENCH", &res.Result)
	stopFollow()
	res.remeasure(log, runStart, time.Now())
	res.Needed = SignersNeeded(sc.Requests, over, window, totalRate(res.Rates)/float64(len(res.Rates)))
	return res, nil
}

// remeasure measures each signer's rate during the run, from its
// signatures made in [from, to), and when one drifted recomputes the
// bounds from the rates seen during the run.
func (r *BridgeResult) remeasure(log *signatureLog, from, to time.Time) {
	for i, s := range r.Rates {
		s.Run = steadyRate(log.between(s.Name, from, to), s.Slots)
		if s.Drifted = drifted(s.Warmup, s.Run); s.Drifted {
			s.PerMinute = s.Run.PerMinute
		}
		r.Rates[i] = s
	}
	if r.Drifted() {
		sc := r.Scenario
		r.PhysicalMax, r.FIFO = CapacityRates(sc.Requests, sc.Over, sc.Window, perMinute(r.Rates))
	}
}

// follow polls log for the signers named until the returned function is
// called, so that it misses none of a long run's signatures.
func follow(ctx context.Context, log *signatureLog, names []string) (stop func()) {
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for clock.Sleep(fctx, 200*time.Millisecond) == nil {
			log.poll(names)
		}
	}()
	return func() {
		cancel()
		<-done
		log.poll(names)
	}
}

// withDefaults fills in the defaults of the fields left zero.
func (r BridgeRun) withDefaults() BridgeRun {
	if r.Load <= 0 {
		r.Load = 3
	}
	if r.Scale <= 0 || r.Scale > 1 {
		r.Scale = 1
	}
	if r.Over <= 0 {
		r.Over = 120 * time.Second
	}
	if r.Window <= 0 {
		r.Window = 120 * time.Second
	}
	if r.MinSteady <= 0 {
		r.MinSteady = 30
	}
	if r.MinSpan <= 0 {
		r.MinSpan = time.Duration(float64(15*time.Second) * r.Scale)
	}
	if r.MaxWarmup <= 0 {
		r.MaxWarmup = 2000
	}
	if r.WarmupLimit <= 0 {
		r.WarmupLimit = 3 * time.Minute
	}
	if r.MaxRequests <= 0 {
		r.MaxRequests = 20000
	}
	return r
}

// scenario is the measured run: signers signers making total signatures a
// minute together, offered r.Load times that over over (or r.Requests),
// scaled and bounded.
func (r BridgeRun) scenario(signers int, total float64, over, window time.Duration) Scenario {
	n := r.Requests
	if n <= 0 {
		n = int(r.Load * total * r.Over.Minutes())
	}
	n = min(max(1, int(float64(n)*r.Scale)), r.MaxRequests)
	sc := Scenario{
		Name: r.Name, Requests: n, Over: over, Window: window, Drain: window + 2*time.Second,
		Signers: signers, SignRate: total / float64(signers), Compress: 1, Concurrency: 64,
	}
	if sc.Name == "" {
		sc.Name = fmt.Sprintf("%d signers, %.0f/min measured", signers, total)
		if signers == 1 {
			sc.Name = fmt.Sprintf("1 signer, %.0f/min measured", total)
		}
	}
	return sc
}

// warmed is what the warm-up measured.
type warmed struct {
	rates    []SignerRate
	requests int
	orders   int
}

// warmUp keeps the healthy signers of the stack's ebpCode busy through the
// whole pipeline, a few requests always waiting for them, until each has
// made r.MinSteady back-to-back signatures spanning r.MinSpan (or the
// warm-up reaches r.MaxWarmup requests or r.WarmupLimit), waits for every
// upload, and measures each signer's steady rate. It fails when a signer
// is disabled (a refused PIN), a request was not answered or not uploaded,
// or a signer made no back-to-back signature.
func warmUp(ctx context.Context, st *devstack.Stack, r BridgeRun, window time.Duration, log *signatureLog) (warmed, error) {
	slots, err := healthySigners(ctx, st)
	if err != nil {
		return warmed{}, err
	}
	signers := slices.Sorted(maps.Keys(slots))
	warmCtx, stopWarm := context.WithCancelCause(ctx)
	defer stopWarm(nil)
	go watchDisabled(warmCtx, st, stopWarm)

	already := acceptedCount(st.Sim)
	start := time.Now()
	f := newFeeder(st, "WARMUP", start)
	for warmCtx.Err() == nil && f.sent < r.MaxWarmup && time.Since(start) < r.WarmupLimit {
		log.poll(signers)
		now := time.Now()
		enough, signed, lastSecond := true, 0, 0
		for _, name := range signers {
			sigs := log.between(name, start, now)
			rate := steadyRate(sigs, slots[name])
			enough = enough && rate.Samples >= r.MinSteady && rate.Over >= r.MinSpan
			signed += len(sigs)
			lastSecond += len(log.between(name, now.Add(-time.Second), now))
		}
		if enough {
			break
		}
		// Two seconds of signing ahead (a few jobs at first), so that a
		// job always waits for each signer.
		if ahead, want := f.sent-signed, max(4*len(signers), 2*lastSecond); ahead < want {
			if err := f.send(warmCtx, min(want-ahead, r.MaxWarmup-f.sent)); err != nil && warmCtx.Err() == nil {
				f.wait()
				return warmed{}, err
			}
		}
		_ = clock.Sleep(warmCtx, 50*time.Millisecond)
	}
	f.wait()
	// The warm-up only measures: its uploads may take their time on a busy
	// machine.
	acked := int(f.acked.Load())
	for deadline := time.Now().Add(max(window, 2*time.Minute)); acceptedCount(st.Sim) < already+acked && time.Now().Before(deadline) && warmCtx.Err() == nil; {
		_ = clock.Sleep(warmCtx, 100*time.Millisecond)
	}
	if disabled := context.Cause(warmCtx); disabled != nil && disabled != context.Canceled && ctx.Err() == nil {
		return warmed{}, disabled
	}
	if err := ctx.Err(); err != nil {
		return warmed{}, err
	}
	if acked < f.sent {
		return warmed{}, fmt.Errorf("bench: warm-up: %d of %d requests answered 10000", acked, f.sent)
	}
	if up := acceptedCount(st.Sim) - already; up < acked {
		return warmed{}, fmt.Errorf("bench: warm-up: %d of %d requests uploaded", up, acked)
	}
	log.poll(signers)
	w := warmed{requests: f.sent, orders: len(f.orders)}
	for _, name := range signers {
		rate := steadyRate(log.between(name, start, time.Now()), slots[name])
		if rate.Samples == 0 {
			return warmed{}, fmt.Errorf("bench: warm-up: signer %s made no signature in %d requests", name, f.sent)
		}
		w.rates = append(w.rates, SignerRate{Name: name, PerMinute: rate.PerMinute, Slots: slots[name], Warmup: rate})
	}
	return w, nil
}

// healthySigners returns the healthy signers of the stack's ebpCode, each
// with its number of slots.
func healthySigners(ctx context.Context, st *devstack.Stack) (map[string]int, error) {
	status, err := st.BridgeStatus(ctx)
	if err != nil {
		return nil, err
	}
	slots := map[string]int{}
	for _, s := range status.Signers {
		if s.EbpCode == st.EbpCode && s.State == "healthy" {
			slots[s.Name] = max(s.Concurrency, 1)
		}
	}
	if len(slots) == 0 {
		return nil, fmt.Errorf("bench: no healthy signer for ebpCode %s", st.EbpCode)
	}
	return slots, nil
}

// SignersNeeded returns how many signers, each signing rate a minute,
// put every one of requests on time when they arrive evenly over over and
// each is due window after it arrives; 0 when not even a thousand do.
func SignersNeeded(requests int, over, window time.Duration, rate float64) int {
	if requests <= 0 || rate <= 0 {
		return 0
	}
	// None can sign more than the time from the first arrival to the last
	// deadline allows: start there.
	k := max(1, int(float64(requests)/(rate*(over+window).Minutes())))
	for ; k <= 1000; k++ {
		if most, _ := Capacity(requests, over, window, k, rate); most >= requests {
			return k
		}
	}
	return 0
}

func totalRate(rates []SignerRate) float64 {
	total := 0.0
	for _, s := range rates {
		total += s.PerMinute
	}
	return total
}

func perMinute(rates []SignerRate) []float64 {
	out := make([]float64, len(rates))
	for i, s := range rates {
		out[i] = s.PerMinute
	}
	return out
}

func names(rates []SignerRate) []string {
	out := make([]string, len(rates))
	for i, s := range rates {
		out[i] = s.Name
	}
	return out
}

// watchDisabled cancels ctx with the reason as soon as a signer of the
// stack's ebpCode is disabled (a refused PIN): the card's first job
// carries the PIN, so this shows in the warm-up, and the run must stop.
func watchDisabled(ctx context.Context, st *devstack.Stack, stop context.CancelCauseFunc) {
	for ctx.Err() == nil {
		if status, err := st.BridgeStatus(ctx); err == nil {
			if err := disabledSigner(status, st.EbpCode); err != nil {
				stop(err)
				return
			}
		}
		_ = clock.Sleep(ctx, 200*time.Millisecond)
	}
}

// disabledSigner returns why a signer of ebpCode is disabled, or nil when
// none is.
func disabledSigner(status *ceb179.SignerHealth, ebpCode string) error {
	for _, s := range status.Signers {
		if s.EbpCode == ebpCode && s.Disabled() {
			return fmt.Errorf("bench: signer %s is %s (%s)", s.Name, s.State, s.LastError)
		}
	}
	return nil
}

// waitHealthy waits until every signer of the stack's ebpCode is healthy,
// or some are and the others had a probe interval to recover, and returns
// how many are. A signer disabled by a refused PIN fails the run: the card
// must not be tried again.
func waitHealthy(ctx context.Context, st *devstack.Stack, probe time.Duration) (int, error) {
	if probe <= 0 {
		probe = 30 * time.Second
	}
	deadline := time.Now().Add(probe + 30*time.Second)
	for {
		status, err := st.BridgeStatus(ctx)
		if err != nil {
			return 0, err
		}
		if err := disabledSigner(status, st.EbpCode); err != nil {
			return 0, err
		}
		healthy, mine := 0, 0
		for _, s := range status.Signers {
			if s.EbpCode == st.EbpCode {
				mine++
				if s.State == "healthy" {
					healthy++
				}
			}
		}
		if healthy == mine || (healthy > 0 && time.Now().After(deadline)) {
			return healthy, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: no signer of ebpCode %s became healthy", st.EbpCode)
		}
		if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}
