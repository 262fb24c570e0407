package signer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// newGuard returns a PIN guard on dir (a process's guard over the state
// directory).
func newGuard(t testing.TB, dir string) *signer.PINGuard {
	t.Helper()
	g, err := signer.NewPINGuard(dir)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// openGuarded opens an E-Port signer on ctl behind guard.
func openGuarded(t *testing.T, ctl *eporttest.Control, guard *signer.PINGuard, name, pin string) *signer.EPort {
	t.Helper()
	e, err := signer.OpenEPort(context.Background(), signer.EPortConfig{
		URL: ctl.URL(), PIN: signer.NewPIN(pin), CallTimeout: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Guard: guard, Name: name,
	})
	if err != nil {
		t.Fatalf("OpenEPort: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// readMarker reads the marker of certNo in dir.
func readMarker(t *testing.T, dir, certNo string) signer.PINRefusal {
	t.Helper()
	rs, err := newGuard(t, dir).Refusals()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Card == certNo {
			b, _ := os.ReadFile(r.Path)
			if strings.Contains(string(b), "12345678") {
				t.Error("the marker holds the PIN")
			}
			return r
		}
	}
	t.Fatalf("no marker for card %s in %s", certNo, dir)
	return signer.PINRefusal{}
}

// TestEPortWrongPINOnce has the card answer a wrong PIN in every wording
// of eporttest.WrongPINAnswers and every rude manner of RudeAnswers (no
// answer, a dropped connection, garbage, reader words, a single letter):
// each blocks the PIN on disk, as a refusal when the words name the PIN
// and as a strike otherwise, and no second PIN reaches the card from the
// same signer (after a PIN-free check), a new signer on the same state
// directory (a restart), or a second signer entry for the card. A changed
// PIN is tried once. The fake control counts the PINs as they arrive.
func TestEPortWrongPINOnce(t *testing.T) {
	for _, a := range slices.Concat(eporttest.WrongPINAnswers, eporttest.RudeAnswers) {
		t.Run("ok "+a.Name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 0x5A)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			ctl.SetWrongPINAnswer(a)
			dir := t.TempDir()
			e := openGuarded(t, ctl, newGuard(t, dir), "card", "12345678")
			_, err := e.Sign(context.Background(), source)
			if !errors.Is(err, signer.ErrPINRefused) || errors.Is(err, signer.ErrPINStruck) == a.Refusal {
				t.Fatalf("Sign = %v, want blocked (struck: %v)", err, !a.Refusal)
			}
			if m := readMarker(t, dir, ctl.CertNo()).Last(); m.Struck() == a.Refusal {
				t.Errorf("marker kind %q, want struck %v", m.Kind, !a.Refusal)
			}
			// Again from the same signer, after a PIN-free check.
			if err := e.Ping(context.Background()); !errors.Is(err, signer.ErrPINRefused) {
				t.Errorf("Ping = %v, want the standing block", err)
			}
			if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
				t.Errorf("second Sign = %v, want blocked", err)
			}
			// A restart: a new guard on the same directory, and a second
			// entry for the same card under another name.
			for _, name := range []string{"card", "card-again"} {
				e2 := openGuarded(t, ctl, newGuard(t, dir), name, "12345678")
				if _, err := e2.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
					t.Errorf("%s after restart: Sign = %v, want blocked", name, err)
				}
			}
			if got, w := ctl.PINRequests(), ctl.WrongPINs(); got != 1 || w != 1 {
				t.Errorf("the card saw %d PIN-bearing requests, %d wrong PINs; want exactly 1", got, w)
			}
			// A changed PIN file is tried once, and signs.
			e3 := openGuarded(t, ctl, newGuard(t, dir), "card", testPIN)
			if _, err := e3.Sign(context.Background(), source); err != nil {
				t.Errorf("Sign with the changed PIN: %v", err)
			}
			if got := ctl.PINRequests(); got != 2 {
				t.Errorf("the card saw %d PIN-bearing requests, want 2", got)
			}
		})
	}
}

// TestEPortDeviceErrors checks that reader and control errors named by a
// known code leave the card usable: not blocked, no marker, and the PIN
// goes again only after a PIN-free check succeeded (counted in the
// control's own log of requests).
func TestEPortDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode eporttest.Mode
	}{
		{"ok reader reset 50070", eporttest.Reset50070},
		{"ok reader open 50200", eporttest.Open50200},
		{"ok card pulled out", eporttest.NoCard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 0x5B)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			dir := t.TempDir()
			e := openGuarded(t, ctl, newGuard(t, dir), "card", testPIN)
			ctl.SetMode(tc.mode)
			for range 3 {
				_, err := e.Sign(context.Background(), source)
				if !errors.Is(err, signer.ErrDevice) || errors.Is(err, signer.ErrPINRefused) {
					t.Fatalf("Sign = %v, want a device error and not a refused PIN", err)
				}
			}
			if rs, _ := newGuard(t, dir).Refusals(); len(rs) != 0 {
				t.Errorf("a device error left a PIN marker: %+v", rs)
			}
			ctl.SetMode(eporttest.Normal)
			if _, err := e.Sign(context.Background(), source); err != nil {
				t.Errorf("Sign after the card came back: %v", err)
			}
			if bad := eporttest.UncheckedRetries(ctl.Events()); len(bad) > 0 {
				t.Errorf("PIN-bearing requests %v came after a failure without a PIN-free check", bad)
			}
		})
	}
}

// TestEPortStrikeOnCorrectPIN has a correct PIN meet a control that hangs,
// and one that answers in device words without a code: the card may have
// counted it, so the PIN is struck and not sent again until pin-reset.
func TestEPortStrikeOnCorrectPIN(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode eporttest.Mode
	}{
		{"ok hang", eporttest.Hang},
		{"ok crypto device words without a code", eporttest.CryptoDevice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 0x5F)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			dir := t.TempDir()
			e := openGuarded(t, ctl, newGuard(t, dir), "card", testPIN)
			ctl.SetMode(tc.mode)
			if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINStruck) {
				t.Fatalf("Sign = %v, want a strike", err)
			}
			ctl.SetMode(eporttest.Normal)
			if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINStruck) {
				t.Fatalf("second Sign = %v, want the strike standing", err)
			}
			if got := ctl.PINRequests(); got != 1 {
				t.Errorf("%d PIN-bearing requests, want 1", got)
			}
			if _, err := newGuard(t, dir).Reset("card"); err != nil {
				t.Fatal(err)
			}
			e2 := openGuarded(t, ctl, newGuard(t, dir), "card", testPIN)
			if _, err := e2.Sign(context.Background(), source); err != nil {
				t.Errorf("Sign after pin-reset: %v", err)
			}
		})
	}
}

// TestPINResetClears checks that Reset by signer name (or certNo) lifts a
// block on disk and in memory.
func TestPINResetClears(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0x5C)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	dir := t.TempDir()
	g := newGuard(t, dir)
	e := openGuarded(t, ctl, g, "card", "12345678")
	if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
		t.Fatalf("Sign = %v", err)
	}
	// A second entry for the card, in another process, meets the block.
	e2 := openGuarded(t, ctl, newGuard(t, dir), "card-2", "12345678")
	if _, err := e2.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
		t.Fatalf("second entry: Sign = %v", err)
	}
	if got, err := newGuard(t, dir).Reset("other"); err != nil || len(got) != 0 {
		t.Errorf("Reset(other) = %v, %v; want nothing cleared", got, err)
	}
	// The second entry's name finds the card's marker too.
	if got, err := newGuard(t, dir).Reset("card-2"); err != nil || len(got) != 1 || got[0] != ctl.CertNo() {
		t.Fatalf("Reset(card-2) = %v, %v", got, err)
	}
	if rs, _ := g.Refusals(); len(rs) != 0 {
		t.Errorf("markers left: %+v", rs)
	}
	card := signer.Card{ID: ctl.CertNo(), Signer: "card"}
	if err := newGuard(t, dir).Blocked(card, signer.NewPIN("12345678")); err != nil {
		t.Errorf("after pin-reset a restarted process is still blocked: %v", err)
	}
	// The process that saw the refusal keeps it until it restarts or is
	// reset itself.
	if err := g.Blocked(card, signer.NewPIN("12345678")); !errors.Is(err, signer.ErrPINRefused) {
		t.Errorf("running process forgot the refusal: %v", err)
	}
	if _, err := g.Reset("card"); err != nil {
		t.Fatal(err)
	}
	if err := g.Blocked(card, signer.NewPIN("12345678")); err != nil {
		t.Errorf("Reset did not clear the process's memory: %v", err)
	}
}

// TestCheckEPortURL keeps the PIN off the network in clear.
func TestCheckEPortURL(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"ok default", signer.DefaultEPortURL, true},
		{"ok IPv6 loopback", "ws://[::1]:61232", true},
		{"ok localhost", "ws://localhost:61232", true},
		{"ok wss anywhere", "wss://wss.singlewindow.cn:61231", true},
		{"fail ws to a LAN host", "ws://192.168.1.20:61232", false},
		{"fail ws to a name", "ws://card-pc:61232", false},
		{"fail http", "http://127.0.0.1:61232", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := signer.CheckEPortURL(tc.url); (err == nil) != tc.ok {
				t.Errorf("CheckEPortURL(%q) = %v", tc.url, err)
			}
		})
	}
}

// BenchmarkPINGuardDo measures what the door adds to each call: for a
// proven card the card's turn and a look for a marker on disk; for a
// trial also the cross-process lock and the record written (and synced)
// before the PIN leaves.
func BenchmarkPINGuardDo(b *testing.B) {
	accept := func(context.Context, signer.PIN) (signer.PINResult, error) { return signer.PINAccepted, nil }
	pin := signer.NewPIN(testPIN)
	b.Run("proven", func(b *testing.B) {
		g := newGuard(b, b.TempDir())
		card := signer.Card{ID: "01", Signer: "card"}
		if err := g.Do(context.Background(), card, pin, accept); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := g.Do(context.Background(), card, pin, accept); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("trial", func(b *testing.B) {
		g := newGuard(b, b.TempDir())
		card := signer.Card{ID: "02", Signer: "card"}
		device := func(context.Context, signer.PIN) (signer.PINResult, error) {
			return signer.PINDeviceCode, fmt.Errorf("%w: 50070", signer.ErrDevice)
		}
		for b.Loop() {
			if err := g.Do(context.Background(), card, pin, device); !errors.Is(err, signer.ErrDevice) {
				b.Fatal(err)
			}
		}
	})
}

// TestPINMarkerUnreadable withholds the PIN while a marker cannot be read:
// the card is unavailable, not refused.
func TestPINMarkerUnreadable(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0x5E)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ctl.CertNo()+".json"), 0o700); err != nil {
		t.Fatal(err)
	}
	e := openGuarded(t, ctl, newGuard(t, dir), "card", testPIN)
	if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrUnavailable) || errors.Is(err, signer.ErrPINRefused) {
		t.Errorf("Sign = %v, want unavailable", err)
	}
	if got := ctl.PINRequests(); got != 0 {
		t.Errorf("%d PIN-bearing requests, want 0", got)
	}
}

// TestPINStateDirUnwritable withholds the PIN when the try cannot be
// recorded first: the card is unavailable.
func TestPINStateDirUnwritable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses /proc, where no directory can be made")
	}
	k := eporttest.NewSM2Key(t, 0x5D)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	e := openGuarded(t, ctl, newGuard(t, "/proc/ceb179-no-such-dir/pin-refused"), "card", "12345678")
	_, err := e.Sign(context.Background(), source)
	if !errors.Is(err, signer.ErrUnavailable) || !strings.Contains(err.Error(), "state directory") {
		t.Fatalf("Sign = %v, want the PIN withheld for the state directory", err)
	}
	if got := ctl.PINRequests(); got != 0 {
		t.Errorf("%d PIN-bearing requests, want 0", got)
	}
}

// TestPINTrialAcrossProcesses has two processes (two guards on one state
// directory) try a card at the same time: the second waits while the
// first one's PIN is out, and once it was refused, meets the marker it
// re-reads after taking the lock.
func TestPINTrialAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := newGuard(t, dir), newGuard(t, dir)
	pin := signer.NewPIN("12345678")
	card := signer.Card{ID: "0a", Signer: "card"}
	inCall, answer := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- p1.Do(context.Background(), card, pin, func(context.Context, signer.PIN) (signer.PINResult, error) {
			close(inCall)
			<-answer
			return signer.PINRefused, fmt.Errorf("%w: e-port: SW=63C7", signer.ErrPINRefused)
		})
	}()
	<-inCall
	sent := 0
	count := func(context.Context, signer.PIN) (signer.PINResult, error) { sent++; return signer.PINAccepted, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p2.Do(ctx, card, pin, count); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("second process during the first one's try: %v, want the PIN withheld", err)
	}
	second := make(chan error, 1)
	go func() { second <- p2.Do(context.Background(), card, pin, count) }()
	time.Sleep(50 * time.Millisecond)
	close(answer)
	if err := <-first; !errors.Is(err, signer.ErrPINRefused) {
		t.Fatal(err)
	}
	var be *signer.PINBlockedError
	if err := <-second; !errors.As(err, &be) {
		t.Errorf("second process after the refusal: %v, want the marker", err)
	}
	if sent != 0 {
		t.Errorf("the second process sent the PIN %d times", sent)
	}
}

// envKillHelper makes the test binary the process that is killed in
// TestPINKilledMidCall: its value is "state dir|control URL".
const envKillHelper = "CEB179_TEST_PIN_KILL_HELPER"

// TestPINKilledMidCall kills a process (this test binary, run again) while
// its PIN-bearing call is at the card: the control has counted the PIN
// and never answers. The next process to try the card finds the trial
// record the dead one left, blocks that PIN as a strike and sends
// nothing; after pin-reset the PIN goes again.
func TestPINKilledMidCall(t *testing.T) {
	if v := os.Getenv(envKillHelper); v != "" {
		dir, url, _ := strings.Cut(v, "|")
		g := newGuard(t, dir)
		e, err := signer.OpenEPort(context.Background(), signer.EPortConfig{
			URL: url, PIN: signer.NewPIN("12345678"), CallTimeout: time.Hour,
			Logger: slog.New(slog.DiscardHandler), Guard: g, Name: "card",
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Sign(context.Background(), source)
		t.Fatalf("the call returned (%v); it should have been killed", err)
	}
	k := eporttest.NewSM2Key(t, 0x5F)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	ctl.SetWrongPINAnswer(eporttest.Answer{Name: "hang", How: eporttest.NoAnswer})
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPINKilledMidCall$")
	cmd.Env = append(os.Environ(), envKillHelper+"="+dir+"|"+ctl.URL())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ctl.PINRequests() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the helper process never sent its PIN")
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	e := openGuarded(t, ctl, newGuard(t, dir), "card", "12345678")
	_, err := e.Sign(context.Background(), source)
	var be *signer.PINBlockedError
	if !errors.As(err, &be) || !errors.Is(err, signer.ErrPINStruck) {
		t.Fatalf("Sign after the kill = %v, want the PIN blocked as a strike", err)
	}
	if got := ctl.PINRequests(); got != 1 {
		t.Errorf("the card saw %d PIN-bearing requests, want 1", got)
	}
	if m := readMarker(t, dir, ctl.CertNo()).Last(); !m.Struck() || !strings.Contains(m.Reason, "stopped during") {
		t.Errorf("marker %+v, want the strike of a stopped process", m)
	}
	// Another PIN is not blocked by it, and pin-reset clears it.
	if err := newGuard(t, dir).Blocked(signer.Card{ID: ctl.CertNo()}, signer.NewPIN(testPIN)); err != nil {
		t.Errorf("another PIN: %v", err)
	}
	if _, err := newGuard(t, dir).Reset("card"); err != nil {
		t.Fatal(err)
	}
	ctl.SetWrongPINAnswer(eporttest.Answer{})
	e2 := openGuarded(t, ctl, newGuard(t, dir), "card", "12345678")
	if _, err := e2.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) || errors.Is(err, signer.ErrPINStruck) {
		t.Errorf("Sign after pin-reset = %v, want the card's refusal", err)
	}
	if got := ctl.PINRequests(); got != 2 {
		t.Errorf("the card saw %d PIN-bearing requests, want 2", got)
	}
}
