package signer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

const testPIN = "88888888"

var source = []byte(`"sessionID":"s-1"||"payExchangeInfoHead":"{\"guid\":\"G\"}"||"payExchangeInfoLists":"[]"||"serviceTime":"1"`)

func openEPort(t *testing.T, ctl *eporttest.Control, pin string, timeout time.Duration) *signer.EPort {
	t.Helper()
	e, err := signer.OpenEPort(context.Background(), signer.EPortConfig{
		URL: ctl.URL(), PIN: signer.NewPIN(pin), CallTimeout: timeout,
		Logger: slog.New(slog.DiscardHandler), Guard: newGuard(t, t.TempDir()), Name: "card",
	})
	if err != nil {
		t.Fatalf("OpenEPort: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEPortSign(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(testing.TB, int64) eporttest.Key
	}{
		{"ok SM2 card", eporttest.NewSM2Key},
		{"ok RSA card", eporttest.NewRSAKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key(t, 0x03000000000cde6f)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			e := openEPort(t, ctl, testPIN, 5*time.Second)
			if got, want := e.CertNo(), "03000000000cde6f"; got != want {
				t.Errorf("CertNo = %s, want %s", got, want)
			}
			v, err := e.Sign(context.Background(), source)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := signature.Verify(k.Cert, source, v); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
		})
	}
}

func TestEPortErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     eporttest.Mode
		pin      string
		want     error
		notWant  error
		requests int
	}{
		{"fail reader reset 50070", eporttest.Reset50070, testPIN, signer.ErrDevice, signer.ErrPINRefused, 1},
		{"fail reader open 50200", eporttest.Open50200, testPIN, signer.ErrDevice, signer.ErrPINRefused, 1},
		{"fail wrong PIN", eporttest.Normal, "12345678", signer.ErrPINRefused, nil, 1},
		{"fail hang times out and strikes", eporttest.Hang, testPIN, signer.ErrPINStruck, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 7)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			ctl.SetMode(tc.mode)
			e := openEPort(t, ctl, tc.pin, 300*time.Millisecond)
			start := time.Now()
			_, err := e.Sign(context.Background(), source)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Sign error = %v, want %v", err, tc.want)
			}
			if tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Errorf("Sign error %v must not be %v", err, tc.notWant)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Sign took %v, want the call timeout", d)
			}
			if got := ctl.SignRequests(); got != tc.requests {
				t.Errorf("control saw %d sign requests, want %d", got, tc.requests)
			}
			if bytes.Contains([]byte(fmt.Sprint(err)), []byte(tc.pin)) {
				t.Errorf("error text holds the PIN: %v", err)
			}
		})
	}
}

// TestEPortRecovers breaks the control in ways that leave the PIN
// unchecked (a reader error with its code, a restart of the control
// between calls): the signer signs again once the control is back, and a
// PIN follows a failure only after a PIN-free check.
func TestEPortRecovers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*eporttest.Control)
		fails  bool
	}{
		{"ok after reader error 50070", func(c *eporttest.Control) { c.SetMode(eporttest.Reset50070) }, true},
		{"ok after control restart", func(c *eporttest.Control) { c.DropConnections() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 8)
			ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
			e := openEPort(t, ctl, testPIN, 300*time.Millisecond)
			if _, err := e.Sign(context.Background(), source); err != nil {
				t.Fatal(err)
			}
			tc.break_(ctl)
			time.Sleep(50 * time.Millisecond)
			if _, err := e.Sign(context.Background(), source); (err != nil) != tc.fails || errors.Is(err, signer.ErrPINRefused) {
				t.Fatalf("Sign on the broken control = %v, want failed %v and not blocked", err, tc.fails)
			}
			ctl.SetMode(eporttest.Normal)
			v, err := e.Sign(context.Background(), source)
			if err != nil {
				t.Fatalf("Sign after recovery: %v", err)
			}
			if err := signature.Verify(k.Cert, source, v); err != nil {
				t.Error(err)
			}
			if bad := eporttest.UncheckedRetries(ctl.Events()); len(bad) > 0 {
				t.Errorf("PIN-bearing requests %v came after a failure without a PIN-free check", bad)
			}
			if !tc.fails && ctl.Connections() < 2 {
				t.Errorf("connections = %d, want a reconnect", ctl.Connections())
			}
		})
	}
}

// TestEPortOutOfOrder has a quick call overtake a slow signature on the same
// connection: replies come back out of order and still reach their callers.
func TestEPortOutOfOrder(t *testing.T) {
	k := eporttest.NewSM2Key(t, 9)
	ctl := eporttest.New(t, k.Signer, k.Cert, testPIN)
	ctl.SetRate(250) // 240 ms a signature
	e := openEPort(t, ctl, testPIN, 5*time.Second)
	var (
		wg       sync.WaitGroup
		signedAt time.Time
		signErr  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, signErr = e.Sign(context.Background(), source)
		signedAt = time.Now()
	}()
	time.Sleep(50 * time.Millisecond)
	data, err := e.Call(context.Background(), signer.MethodCertNo, struct{}{})
	certAt := time.Now()
	wg.Wait()
	if err != nil || signErr != nil {
		t.Fatalf("certNo err %v, sign err %v", err, signErr)
	}
	if len(data) != 1 || data[0] != ctl.CertNo() {
		t.Errorf("certNo reply = %q", data)
	}
	if !certAt.Before(signedAt) {
		t.Errorf("certNo reply did not overtake the signature")
	}
}

func TestEPortUnreachable(t *testing.T) {
	_, err := signer.OpenEPort(context.Background(), signer.EPortConfig{
		URL: "ws://127.0.0.1:1", CallTimeout: time.Second, Logger: slog.New(slog.DiscardHandler),
		Guard: newGuard(t, t.TempDir()),
	})
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestPINNeverPrints(t *testing.T) {
	p := signer.NewPIN("31415926")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "pin", p, "cfg", struct{ PIN signer.PIN }{p})
	j, _ := json.Marshal(struct{ PIN signer.PIN }{p})
	for _, tc := range []struct{ name, out string }{
		{"ok %v", fmt.Sprintf("%v", p)},
		{"ok %+v struct", fmt.Sprintf("%+v", struct{ P signer.PIN }{p})},
		{"ok %#v", fmt.Sprintf("%#v", p)},
		{"ok String", p.String()},
		{"ok slog JSON", buf.String()},
		{"ok json.Marshal", string(j)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Contains([]byte(tc.out), []byte("31415926")) {
				t.Errorf("PIN leaked: %s", tc.out)
			}
		})
	}
	if p.Reveal() != "31415926" {
		t.Error("Reveal lost the PIN")
	}
}
