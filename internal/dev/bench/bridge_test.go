package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	r, err := RunBridge(context.Background(), BridgeRun{Name: "one fake card", Config: cfg, Scale: 0.025, Warmup: 5}, "benchbridge1-")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rates) != 1 || r.Rates[0].Name != "card-1" {
		t.Fatalf("rates %+v, want card-1's", r.Rates)
	}
	// 1,200 a minute is 50 ms a signature; a loaded machine only makes a
	// call slower.
	if pm := r.Rates[0].PerMinute; pm < 200 || pm > 1300 {
		t.Errorf("measured %.0f/min for a card signing 1,200/min", pm)
	}
	want := min(int(3*r.Rates[0].PerMinute*2*0.025), 20000)
	if r.Sent != max(want, 1) || r.Acked != r.Sent {
		t.Errorf("sent %d, acked %d; want %d sent: three times the measured rate over 120 s × 0.025", r.Sent, r.Acked, want)
	}
	if r.PhysicalMax <= 0 || r.PhysicalMax > r.Sent || r.FIFO > r.PhysicalMax {
		t.Errorf("max on time %d, FIFO %d for %d requests", r.PhysicalMax, r.FIFO, r.Sent)
	}
	if r.OnTime > r.Uploads || r.Uploads > r.Sent {
		t.Errorf("on time %d, uploads %d, sent %d", r.OnTime, r.Uploads, r.Sent)
	}
	// Warm-up, probe and run were all signed by the card.
	if got := ctls[0].Signs(); got < 5+r.Uploads {
		t.Errorf("the card signed %d, want at least %d", got, 5+r.Uploads)
	}
	var b strings.Builder
	if err := WriteTable(&b, []Result{r.Result}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one fake card", "real time", fmt.Sprint(r.PhysicalMax)} {
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

// BenchmarkRealTimeEPort is the real-time E-Port bench: 1,500 customs
// requests over 120 s against one and four cards signing at an E-Port
// card's 250 a minute (fake controls over a real WebSocket), through the
// whole local pipeline with `ceb179 local --bridge-config`'s wiring. It
// reports the uploads on time, the most the measured rates allow on time,
// first-in-first-out's figure and the wall time. About 4 and 2.5 minutes.
func BenchmarkRealTimeEPort(b *testing.B) {
	if testing.Short() {
		b.Skip("real time: minutes")
	}
	for _, cards := range []int{1, 4} {
		b.Run(fmt.Sprintf("cards=%d", cards), func(b *testing.B) {
			cfg, _ := eportConfig(b, cards, CardRate, "88888888")
			loopRealTime(b, BridgeRun{Config: cfg, Requests: 1500}, fmt.Sprintf("benchrt%d-", cards))
		})
	}
}

// loopRealTime makes run once per benchmark iteration and reports the
// table, the uploads on time, the most the measured rates allow on time,
// first-in-first-out's figure, the measured signing rate and the wall
// time.
func loopRealTime(b *testing.B, run BridgeRun, prefix string) {
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		r, err := RunBridge(context.Background(), run, fmt.Sprintf("%s%d-", prefix, i))
		if err != nil {
			b.Fatal(err)
		}
		var tb strings.Builder
		_ = WriteTable(&tb, []Result{r.Result})
		b.Logf("rates %+v\n%s", r.Rates, tb.String())
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
