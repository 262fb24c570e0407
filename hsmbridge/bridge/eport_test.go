package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

const cardPIN = "88888888"

// eportSpec is a signer spec over the fake control ctl with its own PIN
// guard on a temporary state directory.
func eportSpec(t *testing.T, name string, ctl *eporttest.Control, pin string) bridge.SignerSpec {
	return guardedSpec(name, ctl, pin, newGuard(t, t.TempDir()))
}

// newGuard returns a PIN guard on dir: one process's view of the state
// directory.
func newGuard(t *testing.T, dir string) *signer.PINGuard {
	t.Helper()
	g, err := signer.NewPINGuard(dir)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// guardedSpec is a signer spec over ctl whose PIN goes through guard, as
// the signers of one configuration share theirs.
func guardedSpec(name string, ctl *eporttest.Control, pin string, guard *signer.PINGuard) bridge.SignerSpec {
	return bridge.SignerSpec{Name: name, EbpCode: "EBP1", Open: func(ctx context.Context) (signer.Signer, error) {
		return signer.OpenEPort(ctx, signer.EPortConfig{
			URL: ctl.URL(), PIN: signer.NewPIN(pin), CallTimeout: 2 * time.Second, Logger: quietLogger(),
			Guard: guard, Name: name,
		})
	}}
}

// runCardBridge runs a bridge with one signer, "card", over the fake
// control ctl of key k (probed every probe; 0: the default), until the
// test ends, and returns it with its queue and upload function once the
// card is in the pool.
func runCardBridge(t *testing.T, k eporttest.Key, ctl *eporttest.Control, probe time.Duration) (*bridge.Bridge, *fakeQueue, *fakeUploader) {
	t.Helper()
	q, up := newFakeQueue(), newFakeUploader()
	up.addCert(k.Cert)
	b, err := bridge.New(bridge.Options{
		Queue: q, Uploader: up, Logger: quietLogger(), ProbeInterval: probe,
		Signers: []bridge.SignerSpec{eportSpec(t, "card", ctl, cardPIN)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 5*time.Second, "card in the pool", func() bool { return signerState(b, "card") == "healthy" })
	return b, q, up
}

// waitFor polls cond every 10 ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func signerState(b *bridge.Bridge, name string) string {
	for _, s := range b.Status().Signers {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

// TestEPortPool runs jobs through two fake E-Port cards over WebSocket.
// Card A is broken in a different way in each case after both passed
// their start-up probe; every job must still be uploaded once, signed by
// card B, and card A must be out of the pool (disabled for a wrong PIN,
// with exactly one wrong-PIN request reaching the card).
func TestEPortPool(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pinA      string // PIN configured for card A
		breakA    func(*eporttest.Control)
		wantState string
		wantAOnly int // sign requests card A may see after the break, at most
		wrong     int // wrong PINs card A sees
	}{
		{"ok both cards sign", cardPIN, func(*eporttest.Control) {}, "healthy", -1, 0},
		{"ok failover on reader error 50070", cardPIN, func(c *eporttest.Control) { c.SetMode(eporttest.Reset50070) }, "unhealthy", 1, 0},
		{"ok failover on reader error 50200", cardPIN, func(c *eporttest.Control) { c.SetMode(eporttest.Open50200) }, "unhealthy", 1, 0},
		{"ok hang is a strike and the job goes to card B", cardPIN, func(c *eporttest.Control) { c.SetMode(eporttest.Hang) }, "disabled: PIN struck", 1, 0},
		{"ok PIN changed on the card disables without retry", cardPIN, func(c *eporttest.Control) { c.SetPIN("00000000") }, "disabled: PIN refused", 1, 1},
		{"ok wrong PIN at start disables without retry", "12345678", func(*eporttest.Control) {}, "disabled: PIN refused", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ka, kb := eporttest.NewSM2Key(t, 0xA1), eporttest.NewSM2Key(t, 0xB2)
			ctlA := eporttest.New(t, ka.Signer, ka.Cert, cardPIN)
			ctlB := eporttest.New(t, kb.Signer, kb.Cert, cardPIN)
			ctlA.SetRate(6000) // 10 ms a signature
			ctlB.SetRate(1200) // 50 ms: A is faster, so it gets jobs
			q, up := newFakeQueue(), newFakeUploader()
			up.addCert(ka.Cert)
			up.addCert(kb.Cert)
			b, err := bridge.New(bridge.Options{
				Queue: q, Uploader: up, Logger: quietLogger(),
				SignTimeout: 2 * time.Second, ProbeInterval: time.Hour,
				Signers: []bridge.SignerSpec{eportSpec(t, "A", ctlA, tc.pinA), eportSpec(t, "B", ctlB, cardPIN)},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); b.Run(ctx) }()
			defer func() { cancel(); <-done }()

			waitFor(t, 5*time.Second, "card B in the pool", func() bool { return signerState(b, "B") == "healthy" })
			// Card A is probed without its PIN, so even with a wrong PIN
			// it joins the pool and meets the PIN with its first job.
			waitFor(t, 5*time.Second, "card A in the pool", func() bool { return signerState(b, "A") == "healthy" })
			before := ctlA.SignRequests()
			tc.breakA(ctlA)

			const n = 30
			for i := range n {
				q.sendJob(fmt.Sprintf("E%02d", i), "EBP1", time.Now().Add(2*time.Minute))
			}
			waitFor(t, 20*time.Second, "all jobs uploaded", func() bool { return q.len() == 0 })

			if got := up.accepted(); got != n {
				t.Errorf("accepted %d, want %d", got, n)
			}
			up.mu.Lock()
			if up.badSigs != 0 {
				t.Errorf("%d bad signatures", up.badSigs)
			}
			up.mu.Unlock()
			if got := signerState(b, "A"); got != tc.wantState {
				t.Errorf("card A state = %q, want %q", got, tc.wantState)
			}
			after := ctlA.SignRequests() - before
			if tc.wantAOnly >= 0 && after > tc.wantAOnly {
				t.Errorf("card A saw %d sign requests after it broke, want at most %d", after, tc.wantAOnly)
			}
			if w := ctlA.WrongPINs(); w != tc.wrong {
				t.Errorf("card A saw %d wrong PINs, want %d", w, tc.wrong)
			}
			if strings.HasPrefix(tc.wantState, "disabled") {
				if a := b.Status().Totals.Alarms; a != 1 {
					t.Errorf("alarms = %d, want 1", a)
				}
			}
			if tc.wantState != "healthy" {
				up.mu.Lock()
				for sid, c := range up.certNos {
					if c != ctlB.CertNo() {
						t.Errorf("session %s signed by %s, want card B", sid, c)
					}
				}
				up.mu.Unlock()
			}
		})
	}
}

// TestEPortCardRate checks one fake card at the real rate of 250
// signatures a minute: 10 jobs take about 2.4 s, signed one at a time.
func TestEPortCardRate(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0xC3)
	ctl := eporttest.New(t, k.Signer, k.Cert, cardPIN)
	ctl.SetRate(250)
	b, q, _ := runCardBridge(t, k, ctl, 0)
	start := time.Now()
	for i := range 10 {
		q.sendJob(fmt.Sprintf("R%02d", i), "EBP1", time.Now().Add(2*time.Minute))
	}
	waitFor(t, 20*time.Second, "all jobs uploaded", func() bool { return q.len() == 0 })
	if d := time.Since(start); d < 2300*time.Millisecond {
		t.Errorf("10 signatures took %v; a 250/min card needs about 2.4 s", d)
	}
	if st := b.Status().Signers[0]; st.SignsPerMinute < 10 || st.State != "healthy" {
		t.Errorf("signer status = %+v", st)
	}
}

// TestEPortIdleHealth pulls the card of an idle signer: the periodic ping
// (no PIN, no signature) takes it out of the pool before any job reaches
// it, and the probe puts it back once the card is in again.
func TestEPortIdleHealth(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0xD4)
	ctl := eporttest.New(t, k.Signer, k.Cert, cardPIN)
	b, _, _ := runCardBridge(t, k, ctl, 100*time.Millisecond)
	signs := ctl.SignRequests()
	ctl.SetMode(eporttest.NoCard)
	waitFor(t, 5*time.Second, "idle card out of the pool", func() bool { return signerState(b, "card") == "unhealthy" })
	if got := ctl.SignRequests(); got != signs {
		t.Errorf("the ping sent %d sign requests; it must not sign", got-signs)
	}
	ctl.SetMode(eporttest.Normal)
	waitFor(t, 5*time.Second, "card back in the pool", func() bool { return signerState(b, "card") == "healthy" })
}

// TestLogsHoldNoSecrets runs jobs through a card, one with a wrong PIN
// first, with debug logs on, and checks the logs hold neither PIN nor any
// part of a sign source.
func TestLogsHoldNoSecrets(t *testing.T) {
	ka, kb := eporttest.NewSM2Key(t, 0xE5), eporttest.NewSM2Key(t, 0xE6)
	ctlA := eporttest.New(t, ka.Signer, ka.Cert, cardPIN)
	ctlB := eporttest.New(t, kb.Signer, kb.Cert, cardPIN)
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	guard := newGuard(t, t.TempDir())
	spec := func(name string, ctl *eporttest.Control, pin string) bridge.SignerSpec {
		return bridge.SignerSpec{Name: name, EbpCode: "EBP1", Open: func(ctx context.Context) (signer.Signer, error) {
			return signer.OpenEPort(ctx, signer.EPortConfig{URL: ctl.URL(), PIN: signer.NewPIN(pin), Logger: log, Guard: guard, Name: name})
		}}
	}
	q, up := newFakeQueue(), newFakeUploader()
	b, err := bridge.New(bridge.Options{
		Queue: q, Uploader: up, Logger: log,
		Signers: []bridge.SignerSpec{spec("A", ctlA, "27182818"), spec("B", ctlB, cardPIN)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	// Card A is probed without its PIN and tries it with a job: send jobs
	// until one has reached it.
	sent := 0
	waitFor(t, 10*time.Second, "card A refused", func() bool {
		if sent < 50 {
			q.sendJob(fmt.Sprintf("L%d", sent), "EBP1", time.Now().Add(time.Minute))
			sent++
		}
		return signerState(b, "A") == "disabled: PIN refused"
	})
	waitFor(t, 10*time.Second, "jobs uploaded", func() bool { return q.len() == 0 })
	cancel()
	<-done
	out := logs.String()
	for _, secret := range []string{cardPIN, "27182818", "payExchangeInfoHead", "serviceTime"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold %q", secret)
		}
	}
	if !strings.Contains(out, `"level":"ERROR+4"`) || !strings.Contains(out, "pin_refused") {
		t.Errorf("no alarm logged for the wrong PIN:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
