package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// markerCheck is a slog handler that, when the alarm is logged, looks
// for the refused-PIN marker on disk: it must be written first.
type markerCheck struct {
	slog.Handler
	path    string
	alarms  *atomic.Int32
	missing *atomic.Int32
}

func (h markerCheck) Enabled(context.Context, slog.Level) bool { return true }

func (h markerCheck) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= bridge.LevelAlarm {
		h.alarms.Add(1)
		if _, err := os.Stat(h.path); err != nil {
			h.missing.Add(1)
		}
	}
	return nil
}

func (h markerCheck) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h markerCheck) WithGroup(string) slog.Handler      { return h }

// runBridge starts a bridge and returns a stop function.
func runBridge(t *testing.T, o bridge.Options) (*bridge.Bridge, func()) {
	t.Helper()
	b, err := bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	return b, func() { cancel(); <-done }
}

// TestPINRefusedOnce has a card answer a wrong PIN in each wording the
// control might use (and one never seen), and in each rude manner (no
// answer, a dropped connection, garbage, reader words, one letter), with
// two signer entries for that card next to a good card B. Counted in the
// fake control, the card sees exactly one PIN-bearing request across (a) a
// long run with a short probe interval, (b) a restart of the bridge (a new
// process: a new guard on the same state directory), (c) `hsmbridge check`
// after the refusal, and (d) the second signer entry. The marker is on
// disk before the alarm is logged, and the status says "disabled: PIN
// refused" (or "disabled: PIN struck" when the answer did not name the
// PIN).
func TestPINRefusedOnce(t *testing.T) {
	for _, a := range slices.Concat(eporttest.WrongPINAnswers, eporttest.RudeAnswers) {
		t.Run("ok "+a.Name, func(t *testing.T) {
			ka, kb := eporttest.NewSM2Key(t, 0x7A), eporttest.NewSM2Key(t, 0x7B)
			ctlA := eporttest.New(t, ka.Signer, ka.Cert, cardPIN)
			ctlA.SetWrongPINAnswer(a)
			ctlB := eporttest.New(t, kb.Signer, kb.Cert, cardPIN)
			stateDir := t.TempDir()
			markers := filepath.Join(stateDir, bridge.PINRefusedDir)
			const wrong = "12345678"
			disabled, struck := "disabled: "+bridge.ReasonPINRefused, int64(0)
			if !a.Refusal {
				disabled, struck = "disabled: "+bridge.ReasonPINStruck, 2
			}
			var alarms, missing atomic.Int32
			log := slog.New(markerCheck{path: filepath.Join(markers, ctlA.CertNo()+".json"), alarms: &alarms, missing: &missing})
			q, up := newFakeQueue(), newFakeUploader()
			up.addCert(kb.Cert)
			jobs := 0
			send := func(n int) {
				for range n {
					q.sendJob(fmt.Sprintf("P%03d", jobs), "EBP1", time.Now().Add(2*time.Minute))
					jobs++
				}
			}
			process := func() (*bridge.Bridge, func()) {
				guard := newGuard(t, markers) // one per process, as SignerSpecs builds it
				return runBridge(t, bridge.Options{
					Queue: q, Uploader: up, Logger: log, ProbeInterval: 20 * time.Millisecond,
					SignTimeout: time.Second, RetryDelay: 10 * time.Millisecond,
					Signers: []bridge.SignerSpec{
						guardedSpec("A1", ctlA, wrong, guard),
						guardedSpec("A2", ctlA, wrong, guard),
						guardedSpec("B", ctlB, cardPIN, guard),
					},
				})
			}

			// (a) and (d): a long run, with both entries for card A.
			b, stop := process()
			waitFor(t, 5*time.Second, "all three in the pool (probed without the PIN)", func() bool {
				return signerState(b, "A1") == "healthy" && signerState(b, "A2") == "healthy" && signerState(b, "B") == "healthy"
			})
			waitFor(t, 20*time.Second, "both entries of card A disabled", func() bool {
				if jobs < 100 {
					send(1)
				}
				return signerState(b, "A1") == disabled && signerState(b, "A2") == disabled
			})
			waitFor(t, 20*time.Second, "first jobs uploaded", func() bool { return q.len() == 0 })
			time.Sleep(time.Second) // 50 probe intervals
			send(10)
			waitFor(t, 20*time.Second, "more jobs uploaded", func() bool { return q.len() == 0 })
			if st := b.Status().Totals; st.Alarms != 2 || st.PINRefused != 2 || st.PINStruck != struck {
				t.Errorf("alarms %d, pinRefused %d, pinStruck %d; want 2, 2, %d (one per entry)", st.Alarms, st.PINRefused, st.PINStruck, struck)
			}
			stop()
			if got := ctlA.PINRequests(); got != 1 {
				t.Fatalf("(a, d) card A saw %d PIN-bearing requests, want exactly 1", got)
			}
			if alarms.Load() == 0 || missing.Load() != 0 {
				t.Errorf("%d alarms, %d of them before the marker was on disk", alarms.Load(), missing.Load())
			}

			// (b) a restart.
			b, stop = process()
			send(10)
			waitFor(t, 20*time.Second, "jobs after restart uploaded", func() bool { return q.len() == 0 })
			waitFor(t, 5*time.Second, "card A disabled after restart", func() bool {
				return signerState(b, "A1") == disabled && signerState(b, "A2") == disabled
			})
			time.Sleep(300 * time.Millisecond)
			stop()
			if got := ctlA.PINRequests(); got != 1 {
				t.Fatalf("(b) after a restart card A saw %d PIN-bearing requests, want 1", got)
			}

			// (c) hsmbridge check.
			pinFile := filepath.Join(t.TempDir(), "a.pin")
			if err := os.WriteFile(pinFile, []byte(wrong+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := bridge.Config{StateDir: stateDir, Signers: []bridge.SignerConfig{
				{Name: "A1", EbpCode: "EBP1", Type: "eport", URL: ctlA.URL(), PINFile: pinFile},
			}}
			var out strings.Builder
			err := bridge.Check(t.Context(), cfg, quietLogger(), &out)
			if err == nil || !strings.Contains(out.String(), "PIN refused") || !strings.Contains(out.String(), "pin-reset") {
				t.Errorf("check = %v\n%s", err, out.String())
			}
			if got := ctlA.PINRequests(); got != 1 {
				t.Fatalf("(c) check sent the PIN: card A saw %d PIN-bearing requests, want 1", got)
			}
			if w := ctlA.WrongPINs(); w != 1 {
				t.Errorf("card A saw %d wrong PINs, want 1", w)
			}
		})
	}
}

// TestDeviceErrorRecovers breaks a card that has signed, in the ways a
// reader or control fails with a known code (50070 on every call, as a
// pulled card; 50070 or 50200 on signatures), while jobs keep coming: no
// PIN goes to the card until a PIN-free check succeeds, the card is never
// disabled, and once it is back it signs again.
func TestDeviceErrorRecovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode eporttest.Mode
	}{
		{"ok reader error 50070 on every call", eporttest.NoCard},
		{"ok reader reset 50070 on signatures", eporttest.Reset50070},
		{"ok reader open 50200 on signatures", eporttest.Open50200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ka, kb := eporttest.NewSM2Key(t, 0x8A), eporttest.NewSM2Key(t, 0x8B)
			ctlA := eporttest.New(t, ka.Signer, ka.Cert, cardPIN)
			ctlB := eporttest.New(t, kb.Signer, kb.Cert, cardPIN)
			ctlB.SetRate(1200) // A is faster, so it gets jobs when healthy
			q, up := newFakeQueue(), newFakeUploader()
			up.addCert(ka.Cert)
			up.addCert(kb.Cert)
			guard := newGuard(t, t.TempDir())
			b, stop := runBridge(t, bridge.Options{
				Queue: q, Uploader: up, Logger: quietLogger(), ProbeInterval: 30 * time.Millisecond,
				SignTimeout: time.Second, RetryDelay: 10 * time.Millisecond,
				Signers: []bridge.SignerSpec{guardedSpec("A", ctlA, cardPIN, guard), guardedSpec("B", ctlB, cardPIN, guard)},
			})
			defer stop()
			n := 0
			send := func(k int) {
				for range k {
					q.sendJob(fmt.Sprintf("D%03d", n), "EBP1", time.Now().Add(2*time.Minute))
					n++
				}
			}
			waitFor(t, 5*time.Second, "card A in the pool", func() bool { return signerState(b, "A") == "healthy" })
			waitFor(t, 10*time.Second, "card A signed", func() bool {
				if ctlA.Signs() == 0 && n < 100 {
					send(1)
				}
				return ctlA.Signs() > 0 && q.len() == 0
			})
			ctlA.SetMode(tc.mode)
			for range 10 {
				send(3)
				time.Sleep(60 * time.Millisecond)
			}
			waitFor(t, 20*time.Second, "jobs uploaded while card A is broken", func() bool { return q.len() == 0 })
			if s := signerState(b, "A"); strings.HasPrefix(s, "disabled") {
				t.Fatalf("card A %s after a device error", s)
			}
			signed := ctlA.Signs()
			ctlA.SetMode(eporttest.Normal)
			deadline := time.Now().Add(10 * time.Second)
			for ctlA.Signs() == signed && time.Now().Before(deadline) {
				send(2)
				time.Sleep(50 * time.Millisecond)
			}
			if ctlA.Signs() == signed {
				t.Fatalf("card A never signed again (state %s)", signerState(b, "A"))
			}
			waitFor(t, 20*time.Second, "all jobs uploaded", func() bool { return q.len() == 0 })
			if bad := eporttest.UncheckedRetries(ctlA.Events()); len(bad) > 0 {
				t.Errorf("PIN-bearing requests %v came after a failure without a PIN-free check", bad)
			}
			if ctlA.WrongPINs() != 0 || b.Status().Totals.Alarms != 0 {
				t.Errorf("wrong PINs %d, alarms %d; want 0, 0", ctlA.WrongPINs(), b.Status().Totals.Alarms)
			}
			if got := up.accepted(); got != n {
				t.Errorf("accepted %d of %d", got, n)
			}
		})
	}
}
