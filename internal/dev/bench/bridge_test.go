package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/ceb179/ceb179/internal/signer/sdftest"
)

// eportConfig starts n fake E-Port cards signing perMinute signatures a
// minute, each accepting PIN 88888888, and returns an hsmbridge
// configuration that signs with them using pin.
func eportConfig(tb testing.TB, n, perMinute int, pin string) (*bridge.Config, []*eporttest.Control) {
	tb.Helper()
	tb.Setenv(bridge.EnvStateDir, tb.TempDir())
	dir := tb.TempDir()
	pinFile := filepath.Join(dir, "card.pin")
	if err := os.WriteFile(pinFile, []byte(pin), 0o600); err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("statusAddr: \"off\"\nprobeInterval: 2s\nsigners:\n")
	var ctls []*eporttest.Control
	for i := range n {
		card := eporttest.NewSM2Key(tb, int64(0x0300000000001000+i))
		ctl := eporttest.New(tb, card.Signer, card.Cert, "88888888")
		ctl.SetRate(perMinute)
		ctls = append(ctls, ctl)
		fmt.Fprintf(&b, "  - {name: card-%d, type: eport, ebpCode: 3301964J31, url: %q, pinFile: %q}\n", i+1, ctl.URL(), pinFile)
	}
	p := filepath.Join(dir, "hsmbridge.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := devstack.LoadBridgeConfig(p)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, ctls
}

// TestRunBridgeSmall runs a short real-time bench against a fake card and
// checks the accounting and that the card's rate was measured, not its
// speed.
func TestRunBridgeSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	cfg, ctls := eportConfig(t, 1, 1200, "88888888")
	r, err := RunBridge(context.Background(), BridgeRun{Name: "one fake card", Config: cfg, Scale: 0.025, MinSpan: time.Second}, "benchbridge1-")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rates) != 1 || r.Rates[0].Name != "card-1" {
		t.Fatalf("rates %+v, want card-1's", r.Rates)
	}
	// 1,200 a minute is 50 ms a signature; this card takes a full 50 ms
	// after each request reaches it, so a loaded machine only makes the
	// pace slower (and may make it drift during the run).
	w := r.Rates[0].Warmup
	if w.PerMinute <= 0 || w.PerMinute > 1210 || r.Rates[0].PerMinute <= 0 {
		t.Errorf("measured %.0f/min (bound from %.0f/min) for a card signing 1,200/min", w.PerMinute, r.Rates[0].PerMinute)
	}
	if w.Samples < 30 || w.Over < time.Second {
		t.Errorf("warm-up measured %d back-to-back signatures over %v, want at least 30 over 1 s", w.Samples, w.Over)
	}
	// The load is offered at the warm-up's rate.
	want := min(int(3*w.PerMinute*2*0.025), 20000)
	if r.Sent != max(want, 1) || r.Acked != r.Sent {
		t.Errorf("sent %d, acked %d; want %d sent: three times the measured rate over 120 s × 0.025", r.Sent, r.Acked, want)
	}
	if r.PhysicalMax <= 0 || r.PhysicalMax > r.Sent || r.FIFO > r.PhysicalMax {
		t.Errorf("max on time %d, FIFO %d for %d requests", r.PhysicalMax, r.FIFO, r.Sent)
	}
	if r.OnTime > r.Uploads || r.Uploads > r.Sent {
		t.Errorf("on time %d, uploads %d, sent %d", r.OnTime, r.Uploads, r.Sent)
	}
	// Warm-up and run were all signed by the card.
	if got := ctls[0].Signs(); got < r.Warmup+r.Uploads {
		t.Errorf("the card signed %d, want at least %d", got, r.Warmup+r.Uploads)
	}
	var b strings.Builder
	if err := WriteBridge(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one fake card", "real time", fmt.Sprint(r.PhysicalMax), "card-1", "how many signers"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestRunBridgeWrongPIN checks that a bench against a card whose PIN is
// wrong stops with the reason and sends the card one PIN only.
func TestRunBridgeWrongPIN(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	cfg, ctls := eportConfig(t, 1, 0, "12345678")
	_, err := RunBridge(context.Background(), BridgeRun{Config: cfg, Scale: 0.025}, "benchbridge2-")
	if err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("err = %v, want the signer disabled", err)
	}
	if w, n := ctls[0].WrongPINs(), ctls[0].SignRequests(); w != 1 || n != 1 {
		t.Fatalf("the card got %d wrong PINs in %d PIN-bearing calls, want 1", w, n)
	}
}

// TestSteadyRateOfACard measures a fake E-Port control that signs exactly
// 250 a minute and, like a real card, makes the first signature after an
// idle spell at once (a token bucket of one). The warm-up must count only
// back-to-back signatures: the rate within 2% of 250, the spread small,
// and the bounds computed from that rate.
func TestSteadyRateOfACard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline for about half a minute")
	}
	cfg, ctls := eportConfig(t, 1, CardRate, "88888888")
	ctls[0].SetBurst(1)
	r, err := RunBridge(context.Background(), BridgeRun{Name: "card at 250/min", Config: cfg, Scale: 0.025, MinSpan: 15 * time.Second}, "benchsteady-")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rates) != 1 {
		t.Fatalf("rates %+v, want one signer's", r.Rates)
	}
	s := r.Rates[0]
	t.Logf("warm-up: %.2f/min ±%.2f from %d back-to-back signatures over %v (%d requests); run: %.2f/min ±%.2f from %d",
		s.Warmup.PerMinute, s.Warmup.Spread, s.Warmup.Samples, s.Warmup.Over, r.Warmup, s.Run.PerMinute, s.Run.Spread, s.Run.Samples)
	if diff := math.Abs(s.PerMinute - CardRate); diff > 0.02*CardRate {
		t.Errorf("measured %.1f/min for a card signing %d/min: off by %.1f%%", s.PerMinute, CardRate, 100*diff/CardRate)
	}
	if s.Warmup.Samples < 30 || s.Warmup.Over < 15*time.Second {
		t.Errorf("measured on %d back-to-back signatures over %v, want at least 30 over 15 s", s.Warmup.Samples, s.Warmup.Over)
	}
	if s.Warmup.Spread <= 0 || s.Warmup.Spread > 0.01*CardRate {
		t.Errorf("spread ±%.2f/min, want small (under 1%%) and measured", s.Warmup.Spread)
	}
	if s.Drifted {
		t.Errorf("a steady card reported as drifted: warm-up %.1f, run %.1f", s.Warmup.PerMinute, s.Run.PerMinute)
	}
	// The bounds of this run come from the measured rate...
	sc := r.Scenario
	if most, fifo := CapacityRates(sc.Requests, sc.Over, sc.Window, []float64{s.PerMinute}); r.PhysicalMax != most || r.FIFO != fifo {
		t.Errorf("most possible %d, FIFO %d; the measured rate gives %d and %d", r.PhysicalMax, r.FIFO, most, fifo)
	}
	if want := SignersNeeded(sc.Requests, sc.Over, sc.Window, CardRate); r.Needed != want {
		t.Errorf("%d signers needed, want %d as at exactly %d/min", r.Needed, want, CardRate)
	}
	// ...and at full size, 1,500 requests over 120 s, that rate's bound
	// is the true one's (999), not the 1,075 a counted free signature gave.
	full, _ := CapacityRates(1500, 120*time.Second, 120*time.Second, []float64{s.PerMinute})
	exact, _ := CapacityRates(1500, 120*time.Second, 120*time.Second, []float64{CardRate})
	t.Logf("most possible for 1,500 over 120 s: %d at the measured rate, %d at exactly %d/min", full, exact, CardRate)
	if math.Abs(float64(full-exact)) > 0.01*float64(exact) {
		t.Errorf("most possible for 1,500 over 120 s at the measured rate %d, at the true rate %d", full, exact)
	}
	var b strings.Builder
	if err := WriteBridge(&b, r); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
	for _, want := range []string{rateText(s.Warmup), samplesText(s.Warmup), "none", fmt.Sprintf("(%d at the measured rates)", r.PhysicalMax), "how many signers"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestRunBridgeDrift slows the card to half its speed when the run
// starts: the table must say the rate drifted, and the most possible must
// come from the rate seen during the run.
func TestRunBridgeDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	cfg, ctls := eportConfig(t, 1, 600, "88888888")
	ctls[0].SetBurst(1)
	run := BridgeRun{Name: "card slowing down", Config: cfg, Scale: 0.025, MinSpan: time.Second,
		OnRun: func(Scenario, []SignerRate) { ctls[0].SetRate(300) }}
	r, err := RunBridge(context.Background(), run, "benchdrift-")
	if err != nil {
		t.Fatal(err)
	}
	s := r.Rates[0]
	t.Logf("warm-up %.1f/min ±%.1f (%d), run %.1f/min ±%.1f (%d); most possible %d, at the warm-up's rate %d",
		s.Warmup.PerMinute, s.Warmup.Spread, s.Warmup.Samples, s.Run.PerMinute, s.Run.Spread, s.Run.Samples, r.PhysicalMax, r.WarmupMax)
	// A busy machine may slow the pace the bridge achieves, never speed
	// it up beyond the card's.
	if s.Warmup.PerMinute > 612 || s.Run.PerMinute > 306 {
		t.Errorf("warm-up %.1f/min (the card signs 600), run %.1f/min (300)", s.Warmup.PerMinute, s.Run.PerMinute)
	}
	if !s.Drifted || !r.Drifted() || s.PerMinute != s.Run.PerMinute {
		t.Fatalf("drift not reported: %+v", s)
	}
	sc := r.Scenario
	most, fifo := CapacityRates(sc.Requests, sc.Over, sc.Window, []float64{s.Run.PerMinute})
	if r.PhysicalMax != most || r.FIFO != fifo || r.PhysicalMax >= r.WarmupMax {
		t.Errorf("most possible %d FIFO %d (warm-up's %d); the run's rate gives %d and %d", r.PhysicalMax, r.FIFO, r.WarmupMax, most, fifo)
	}
	var b strings.Builder
	if err := WriteBridge(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"card-1 drifted:", "bound from the run's rate", fmt.Sprintf("%d at the warm-up's", r.WarmupMax)} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestCapacityRates(t *testing.T) {
	tests := []struct {
		name          string
		requests      int
		window        time.Duration
		rates         []float64
		wantMax, fifo int
	}{
		// Ten requests at once, due in 5.5 s, one signer at 1 s each.
		{"ok one signer signs five in time", 10, 5500 * time.Millisecond, []float64{60}, 5, 5},
		// A 0.1 s signer does nine by 0.9 s; the 1 s signer would finish
		// any at 1 s, too late for 0.95 s.
		{"ok the fast signer takes what the slow one cannot", 10, 950 * time.Millisecond, []float64{60, 600}, 9, 9},
		{"ok two slow signers share", 4, 2 * time.Second, []float64{60, 60}, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxOnTime, fifo := CapacityRates(tt.requests, 0, tt.window, tt.rates)
			if maxOnTime != tt.wantMax || fifo != tt.fifo {
				t.Errorf("max %d FIFO %d, want %d and %d", maxOnTime, fifo, tt.wantMax, tt.fifo)
			}
		})
	}
}

// benchRuns numbers the runs of this process, so that each has tables of
// its own (-count runs a benchmark again in the same process).
var benchRuns atomic.Int64

// BenchmarkRealTimeEPort is the real-time E-Port bench: 1,500 customs
// requests over 120 s against one and four cards signing at an E-Port
// card's 250 a minute, the first signature after an idle spell free as on
// a real card (fake controls over a real WebSocket), through the whole
// local pipeline with `ceb179 local --bridge-config`'s wiring. It reports
// the steady rate measured, the uploads on time, the most the measured
// rates allow on time, first-in-first-out's figure and the wall time.
// About 4.5 and 3 minutes.
func BenchmarkRealTimeEPort(b *testing.B) {
	if testing.Short() {
		b.Skip("real time: minutes")
	}
	for _, cards := range []int{1, 4} {
		b.Run(fmt.Sprintf("cards=%d", cards), func(b *testing.B) {
			cfg, ctls := eportConfig(b, cards, CardRate, "88888888")
			for _, c := range ctls {
				c.SetBurst(1)
			}
			loopRealTime(b, BridgeRun{Config: cfg, Requests: 1500}, fmt.Sprintf("benchrt%d-", cards))
		})
	}
}

// loopRealTime makes run once per benchmark iteration and reports the
// table, the uploads on time, the most the measured rates allow on time,
// first-in-first-out's figure, the measured signing rate and the wall
// time.
func loopRealTime(b *testing.B, run BridgeRun, prefix string) {
	for b.Loop() {
		start := time.Now()
		r, err := RunBridge(context.Background(), run, fmt.Sprintf("%s%d-", prefix, benchRuns.Add(1)))
		if err != nil {
			b.Fatal(err)
		}
		var tb strings.Builder
		_ = WriteBridge(&tb, r)
		b.Logf("\n%s", tb.String())
		perMinute := 0.0
		for _, sr := range r.Rates {
			perMinute += sr.PerMinute
		}
		b.ReportMetric(float64(r.OnTime), "on-time")
		b.ReportMetric(float64(r.PhysicalMax), "max-on-time")
		b.ReportMetric(float64(r.FIFO), "fifo-on-time")
		b.ReportMetric(100*float64(r.OnTime)/float64(max(r.PhysicalMax, 1)), "%-of-max")
		b.ReportMetric(perMinute, "signs/min-measured")
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
	}
}

// BenchmarkRealTimeSDF is the real-time cipher machine bench: 10,000
// customs requests over 120 s (five times what four cards could sign in
// the window) against one cipher machine behind its SDF library (the
// soft one, loaded by path, capped at 2,000 signatures a second) with its
// SM2 key and eight sessions, through the whole local pipeline with `ceb179
// local --bridge-config`'s wiring. About 2.5 minutes.
func BenchmarkRealTimeSDF(b *testing.B) {
	if testing.Short() {
		b.Skip("real time: minutes")
	}
	b.Setenv(bridge.EnvStateDir, b.TempDir())
	dev := sdftest.New(b, 0x0300000000002000, 0x01692000, sdftest.Options{Rate: 2000})
	dir := b.TempDir()
	pinFile := filepath.Join(dir, "machine.pin")
	if err := os.WriteFile(pinFile, []byte(sdftest.Password), 0o600); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "hsmbridge.yaml")
	yaml := fmt.Sprintf("statusAddr: \"off\"\nprobeInterval: 2s\nsigners:\n  - {name: machine-1, type: sdf, ebpCode: 3301964J31, library: %q, keyIndex: %d, certFile: %q, pinFile: %q, sessions: 8}\n",
		dev.Library, sdftest.SM2Index, dev.SM2Cert, pinFile)
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := devstack.LoadBridgeConfig(p)
	if err != nil {
		b.Fatal(err)
	}
	loopRealTime(b, BridgeRun{Name: "soft SDF, 2,000/s cap", Config: cfg, Requests: 10000}, "benchsdf")
}
