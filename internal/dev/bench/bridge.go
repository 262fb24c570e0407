package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	// Warmup is how many requests per signer measure the rates before the
	// run (default 10).
	Warmup int
	// Scale shrinks the request count, Over and Window alike, for a quick
	// look (default 1).
	Scale float64
	// MaxRequests bounds the request count (default 20,000): signers as
	// fast as a key file would otherwise ask for millions.
	MaxRequests int
}

// SignerRate is one signer's measured speed.
type SignerRate struct {
	// Name is the signer's name.
	Name string
	// PerMinute is how many signatures it makes a minute.
	PerMinute float64
}

// BridgeResult is what a BridgeRun measured.
type BridgeResult struct {
	Result
	// Rates are the measured rates of the signers the load went to.
	Rates []SignerRate
	// EbpCode is the platform code of the load (that of the first signer).
	EbpCode string
}

// RunBridge measures the signers of r.Config, the ones of its first
// signer's ebpCode, by a short warm-up through the whole pipeline, then
// offers them r.Load times their rate in real time (a card is a card: no
// compression) and counts the uploads on time, next to the most the
// measured rates allow on time and what first-in-first-out signing would
// get. It waits for uploads until the last request's deadline.
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
	healthy, err := waitHealthy(ctx, st, cfg.ProbeInterval)
	if err != nil {
		return res, err
	}
	warmOrders, err := warmUp(ctx, st, r.Warmup*healthy, window)
	if err != nil {
		return res, err
	}
	if res.Rates, err = measureRates(ctx, st); err != nil {
		return res, err
	}
	rates, total := make([]float64, len(res.Rates)), 0.0
	for i, s := range res.Rates {
		rates[i] = s.PerMinute
		total += s.PerMinute
	}
	sc := r.scenario(len(rates), total, over, window)
	res.Result = Result{Scenario: sc}
	res.PhysicalMax, res.FIFO = CapacityRates(sc.Requests, over, window, rates)
	// Orders of their own, each asked no more than the daily cap allows.
	orders, err := seed(ctx, st, warmOrders, ordersFor(sc.Requests))
	if err != nil {
		return res, err
	}
	offer(ctx, st, sc, orders, "BENCH", &res.Result)
	return res, nil
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
	if r.Warmup <= 0 {
		r.Warmup = 10
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

// warmUp sends n requests through the whole pipeline, so that the bridge
// measures its signers, and returns how many orders it seeded. It fails
// when a signer is disabled (a refused PIN) or not every request was
// uploaded.
func warmUp(ctx context.Context, st *devstack.Stack, n int, window time.Duration) (int, error) {
	orders, err := seed(ctx, st, 0, ordersFor(n))
	if err != nil {
		return 0, err
	}
	// The warm-up only measures: it may take its time on a busy machine.
	warm := Scenario{Requests: n, Window: window, Drain: max(window, 2*time.Minute), Concurrency: 64}
	var res Result
	warmCtx, stopWarm := context.WithCancelCause(ctx)
	go watchDisabled(warmCtx, st, stopWarm)
	offer(warmCtx, st, warm, orders, "WARMUP", &res)
	disabled := context.Cause(warmCtx)
	stopWarm(nil)
	if disabled != nil && disabled != context.Canceled && ctx.Err() == nil {
		return 0, disabled
	}
	if res.Uploads < warm.Requests {
		return 0, fmt.Errorf("bench: warm-up: %d of %d requests uploaded", res.Uploads, warm.Requests)
	}
	return len(orders), nil
}

// measureRates reads the rates the bridge estimated for the healthy
// signers of the stack's ebpCode.
func measureRates(ctx context.Context, st *devstack.Stack) ([]SignerRate, error) {
	status, err := st.BridgeStatus(ctx)
	if err != nil {
		return nil, err
	}
	var rates []SignerRate
	for _, s := range status.Signers {
		if s.EbpCode != st.EbpCode || s.State != "healthy" {
			continue
		}
		perMinute := float64(max(s.Concurrency, 1)) * float64(time.Minute) / float64(max(time.Duration(s.EstimateMs)*time.Millisecond, time.Millisecond))
		rates = append(rates, SignerRate{Name: s.Name, PerMinute: perMinute})
	}
	if len(rates) == 0 {
		return nil, fmt.Errorf("bench: no healthy signer for ebpCode %s after the warm-up", st.EbpCode)
	}
	return rates, nil
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
