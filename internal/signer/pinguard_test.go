package signer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

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

// TestEPortWrongPINWordings has the card answer a wrong PIN in every
// wording of eporttest.WrongPINAnswers: each is a refused PIN, recorded on
// disk, and no second PIN reaches the card, from the same signer, a new
// signer on the same state directory (a restart), or a second signer
// entry for the card. A changed PIN is tried once.
func TestEPortWrongPINWordings(t *testing.T) {
	for _, a := range eporttest.WrongPINAnswers {
		t.Run("ok "+a.Name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 0x5A)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			ctl.SetWrongPINAnswer(a)
			dir := t.TempDir()
			e := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", "12345678")
			_, err := e.Sign(context.Background(), source)
			if !errors.Is(err, signer.ErrPINRefused) {
				t.Fatalf("Sign = %v, want ErrPINRefused", err)
			}
			if _, err := os.Stat(filepath.Join(dir, ctl.CertNo()+".json")); err != nil {
				t.Fatalf("no marker after the refusal: %v", err)
			}
			b, _ := os.ReadFile(filepath.Join(dir, ctl.CertNo()+".json"))
			if strings.Contains(string(b), "12345678") {
				t.Error("the marker holds the PIN")
			}
			// Again from the same signer, after a PIN-free check.
			if err := e.Ping(context.Background()); !errors.Is(err, signer.ErrPINRefused) {
				t.Errorf("Ping = %v, want the standing refusal", err)
			}
			if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
				t.Errorf("second Sign = %v, want ErrPINRefused", err)
			}
			// A restart: a new guard on the same directory, and a second
			// entry for the same card under another name.
			for _, name := range []string{"card", "card-again"} {
				e2 := openGuarded(t, ctl, signer.NewPINGuard(dir), name, "12345678")
				if _, err := e2.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
					t.Errorf("%s after restart: Sign = %v, want ErrPINRefused", name, err)
				}
			}
			if got := ctl.PINRequests(); got != 1 {
				t.Errorf("the card saw %d PIN-bearing requests, want exactly 1", got)
			}
			// A changed PIN file is tried once, and signs.
			e3 := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
			if _, err := e3.Sign(context.Background(), source); err != nil {
				t.Errorf("Sign with the changed PIN: %v", err)
			}
			if got := ctl.PINRequests(); got != 2 {
				t.Errorf("the card saw %d PIN-bearing requests, want 2", got)
			}
		})
	}
}

// TestEPortDeviceErrors checks that known reader and control errors on a
// signature leave the card usable: not refused, no marker, and the PIN
// goes again only after a PIN-free check.
func TestEPortDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode eporttest.Mode
		want error
	}{
		{"ok reader reset 50070", eporttest.Reset50070, signer.ErrDevice},
		{"ok reader open 50200", eporttest.Open50200, signer.ErrDevice},
		{"ok crypto device wording", eporttest.CryptoDevice, signer.ErrDevice},
		{"ok card pulled out", eporttest.NoCard, signer.ErrDevice},
		{"ok hang", eporttest.Hang, signer.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 0x5B)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			dir := t.TempDir()
			e := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
			ctl.SetMode(tc.mode)
			_, err := e.Sign(context.Background(), source)
			if !errors.Is(err, tc.want) || errors.Is(err, signer.ErrPINRefused) {
				t.Fatalf("Sign = %v, want %v and not a refused PIN", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, ctl.CertNo()+".json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a device error left a refused-PIN marker (%v)", err)
			}
			ctl.SetMode(eporttest.Normal)
			n := ctl.PINRequests()
			if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrNotProven) {
				t.Errorf("Sign before a PIN-free check = %v, want ErrNotProven", err)
			}
			if ctl.PINRequests() != n {
				t.Error("the PIN went to the card before a PIN-free check")
			}
			if err := e.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if _, err := e.Sign(context.Background(), source); err != nil {
				t.Errorf("Sign after the card came back: %v", err)
			}
		})
	}
}

// TestPINResetClears checks that Reset by signer name (or certNo) lifts a
// refusal on disk and in memory.
func TestPINResetClears(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0x5C)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	dir := t.TempDir()
	g := signer.NewPINGuard(dir)
	e := openGuarded(t, ctl, g, "card", "12345678")
	if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
		t.Fatalf("Sign = %v", err)
	}
	// A second entry for the card, in another process, meets the refusal.
	e2 := openGuarded(t, ctl, signer.NewPINGuard(dir), "card-2", "12345678")
	if _, err := e2.Sign(context.Background(), source); !errors.Is(err, signer.ErrPINRefused) {
		t.Fatalf("second entry: Sign = %v", err)
	}
	if got, err := signer.NewPINGuard(dir).Reset("other"); err != nil || len(got) != 0 {
		t.Errorf("Reset(other) = %v, %v; want nothing cleared", got, err)
	}
	// The second entry's name finds the card's marker too.
	if got, err := signer.NewPINGuard(dir).Reset("card-2"); err != nil || len(got) != 1 || got[0] != ctl.CertNo() {
		t.Fatalf("Reset(card-2) = %v, %v", got, err)
	}
	if rs, _ := g.Refusals(); len(rs) != 0 {
		t.Errorf("markers left: %+v", rs)
	}
	if err := signer.NewPINGuard(dir).Blocked(ctl.CertNo(), "card", signer.NewPIN("12345678")); err != nil {
		t.Errorf("after pin-reset a restarted process is still blocked: %v", err)
	}
	// The process that saw the refusal keeps it until it restarts or is
	// reset itself.
	if err := g.Blocked(ctl.CertNo(), "card", signer.NewPIN("12345678")); !errors.Is(err, signer.ErrPINRefused) {
		t.Errorf("running process forgot the refusal: %v", err)
	}
	if _, err := g.Reset("card"); err != nil {
		t.Fatal(err)
	}
	if err := g.Blocked(ctl.CertNo(), "card", signer.NewPIN("12345678")); err != nil {
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

// BenchmarkPINGuardBegin measures what the guard adds to each signature of
// a proven card: the card's turn, a look for a marker on disk, and done.
func BenchmarkPINGuardBegin(b *testing.B) {
	for _, tc := range []struct {
		name string
		dir  string
	}{{"memory", ""}, {"state dir", b.TempDir()}} {
		b.Run(tc.name, func(b *testing.B) {
			g := signer.NewPINGuard(tc.dir)
			pin := signer.NewPIN(testPIN)
			g.Probed("01")
			for b.Loop() {
				done, err := g.Begin(context.Background(), "01", "card", pin)
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
	}
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
	e := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
	if _, err := e.Sign(context.Background(), source); !errors.Is(err, signer.ErrUnavailable) || errors.Is(err, signer.ErrPINRefused) {
		t.Errorf("Sign = %v, want unavailable", err)
	}
	if got := ctl.PINRequests(); got != 0 {
		t.Errorf("%d PIN-bearing requests, want 0", got)
	}
}

// TestPINStateDirUnwritable withholds the PIN from a card that is not
// proven when no refusal could be recorded: the card is unavailable.
func TestPINStateDirUnwritable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses /proc, where no directory can be made")
	}
	k := eporttest.NewSM2Key(t, 0x5D)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	e := openGuarded(t, ctl, signer.NewPINGuard("/proc/ceb179-no-such-dir/pin-refused"), "card", "12345678")
	_, err := e.Sign(context.Background(), source)
	if !errors.Is(err, signer.ErrUnavailable) || !strings.Contains(err.Error(), "state directory") {
		t.Fatalf("Sign = %v, want the PIN withheld for the state directory", err)
	}
	if got := ctl.PINRequests(); got != 0 {
		t.Errorf("%d PIN-bearing requests, want 0", got)
	}
}

// TestPINTrialAcrossProcesses has two processes (two guards on one state
// directory) try a card that is not proven at the same time: only one may
// send the PIN; once it was refused, the other meets the marker.
func TestPINTrialAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := signer.NewPINGuard(dir), signer.NewPINGuard(dir)
	pin := signer.NewPIN("12345678")
	p1.Probed("0a")
	p2.Probed("0a")
	done, err := p1.Begin(context.Background(), "0a", "card", pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Begin(context.Background(), "0a", "card", pin); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("second process during the first one's try: %v, want the PIN withheld", err)
	}
	if err := done(fmt.Errorf("%w: e-port: SW=63C7", signer.ErrPINRefused)); err != nil {
		t.Fatal(err)
	}
	p2.Probed("0a")
	if _, err := p2.Begin(context.Background(), "0a", "card", pin); !errors.Is(err, signer.ErrPINRefused) {
		t.Errorf("second process after the refusal: %v, want the marker", err)
	}
	// A trial lock left by a process that died long ago does not block.
	stale := filepath.Join(dir, "0b.trial")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	p1.Probed("0b")
	done, err = p1.Begin(context.Background(), "0b", "card", signer.NewPIN(testPIN))
	if err != nil {
		t.Fatalf("stale trial lock: %v", err)
	}
	done(nil)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trial lock left after the try: %v", err)
	}
}

// TestEPortDeviceWordsRun has the card answer every PIN-bearing call with a
// device error named in words only (no known code), as a wrong PIN could
// be worded: fewer than MaxDeviceWords in a row are forgiven, and a
// signature ends the run; a longer run is a refused PIN, counted across a
// restart, and no more PINs reach the card. The count is the fake
// control's.
func TestEPortDeviceWordsRun(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0x5C)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	dir := t.TempDir()
	ctx := context.Background()
	e := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
	fail := func(e *signer.EPort) error {
		t.Helper()
		if err := e.Ping(ctx); err != nil {
			return err
		}
		_, err := e.Sign(ctx, source)
		return err
	}

	// A run one short of the limit, then a signature: the run is over.
	ctl.SetMode(eporttest.CryptoDevice)
	for i := range signer.MaxDeviceWords - 1 {
		if err := fail(e); !errors.Is(err, signer.ErrDevice) || errors.Is(err, signer.ErrPINRefused) {
			t.Fatalf("call %d: %v, want a device error", i+1, err)
		}
	}
	ctl.SetMode(eporttest.Normal)
	if err := fail(e); err != nil {
		t.Fatalf("Sign after the card came back: %v", err)
	}

	// A new run, with a restart in the middle: the count goes on.
	ctl.SetMode(eporttest.CryptoDevice)
	before := ctl.PINRequests()
	for i := range signer.MaxDeviceWords - 1 {
		if err := fail(e); !errors.Is(err, signer.ErrDevice) {
			t.Fatalf("call %d of the second run: %v, want a device error", i+1, err)
		}
	}
	e2 := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
	if err := fail(e2); !errors.Is(err, signer.ErrDevice) {
		t.Fatalf("last call of the run: %v, want a device error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ctl.CertNo()+".json")); err != nil {
		t.Fatalf("no refused-PIN marker after %d device wordings in a row: %v", signer.MaxDeviceWords, err)
	}
	for range 5 {
		if err := fail(e2); !errors.Is(err, signer.ErrPINRefused) {
			t.Fatalf("after the run: %v, want ErrPINRefused", err)
		}
	}
	e3 := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
	if err := fail(e3); !errors.Is(err, signer.ErrPINRefused) {
		t.Fatalf("after a restart: %v, want ErrPINRefused", err)
	}
	if got := ctl.PINRequests() - before; got != signer.MaxDeviceWords {
		t.Errorf("the card saw %d PIN-bearing requests in the run, want %d", got, signer.MaxDeviceWords)
	}

	// pin-reset ends it: the card signs again.
	if _, err := signer.NewPINGuard(dir).Reset("card"); err != nil {
		t.Fatal(err)
	}
	ctl.SetMode(eporttest.Normal)
	e4 := openGuarded(t, ctl, signer.NewPINGuard(dir), "card", testPIN)
	if err := fail(e4); err != nil {
		t.Errorf("after pin-reset: %v", err)
	}
}
