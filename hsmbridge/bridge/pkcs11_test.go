//go:build cgo

package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/pkcs11test"
)

// pkcs11Bridge is a bridge whose signers are the PKCS#11 entries of cfg,
// built as `hsmbridge run` builds them.
func pkcs11Bridge(t *testing.T, cfg bridge.Config) *bridge.Bridge {
	t.Helper()
	specs, err := cfg.SignerSpecs(quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Options{
		Queue: newFakeQueue(), Uploader: newFakeUploader(), Logger: quietLogger(),
		Signers: specs, ProbeInterval: 100 * time.Millisecond, SignTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hsmConfig configures one PKCS#11 signer per key label on the fake
// module's token, with a 1 s call timeout.
func hsmConfig(t *testing.T, m *pkcs11test.Module, stateDir string, keys ...string) bridge.Config {
	t.Helper()
	t.Setenv("HSMBRIDGE_TEST_HSM_PIN", "1234")
	c := bridge.Config{StateDir: stateDir}
	for _, k := range keys {
		c.Signers = append(c.Signers, bridge.SignerConfig{Name: "hsm-" + k, EbpCode: "EBP1", Type: "pkcs11",
			Module: m.Path, TokenLabel: pkcs11test.Token, KeyLabel: k, PINEnv: "HSMBRIDGE_TEST_HSM_PIN",
			CallTimeout: time.Second})
	}
	return c
}

// TestPKCS11HungLoginRunStops has the module's C_Login hang (a network HSM
// that stopped answering): the bridge abandons the login at the call
// timeout as a strike, and `run` stops within the call timeout of being
// told to; a restart sends no second login.
func TestPKCS11HungLoginRunStops(t *testing.T) {
	m := pkcs11test.Build(t)
	m.SetLogin("hang")
	cfg := hsmConfig(t, m, t.TempDir(), "card")
	b := pkcs11Bridge(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	waitFor(t, 10*time.Second, "the login in the module", func() bool { return m.Logins() == 1 })
	stop := time.Now()
	cancel()
	select {
	case <-done:
		t.Logf("run stopped %s after it was told to (call timeout %s)", time.Since(stop).Round(time.Millisecond), cfg.Signers[0].CallTimeout)
	case <-time.After(5 * cfg.Signers[0].CallTimeout):
		t.Fatalf("run still running %s after it was told to stop; the call timeout is %s", 5*cfg.Signers[0].CallTimeout, cfg.Signers[0].CallTimeout)
	}
	guard, _, err := cfg.PINGuard()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := guard.Refusals()
	if err != nil || len(rs) != 1 || !rs[0].Last().Struck() {
		t.Fatalf("markers %+v, %v; want the strike of the abandoned login", rs, err)
	}
	// A restart (a new process: a new guard on the state directory).
	b, stop2 := runPKCS11(t, pkcs11Bridge(t, cfg))
	waitFor(t, 5*time.Second, "the signer disabled", func() bool { return signerState(b, "hsm-card") == "disabled: "+bridge.ReasonPINStruck })
	stop2()
	if n := m.Logins(); n != 1 {
		t.Errorf("%d logins reached the module, want 1", n)
	}
}

// runPKCS11 runs b until the returned stop is called.
func runPKCS11(t *testing.T, b *bridge.Bridge) (*bridge.Bridge, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	return b, func() { cancel(); <-done }
}

// TestPKCS11LoginThroughTheModule has the module answer the login with a
// refusal, with a code that is no known device error, and with a device
// error, through the real cgo calls, while the bridge probes every 100 ms:
// the first two block the PIN at one login, for both keys on the token;
// the device error leaves the signer unhealthy and its PIN tried again.
func TestPKCS11LoginThroughTheModule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rv     string
		state  string
		logins func(int) bool
	}{
		{"ok CKR_PIN_INCORRECT", "0xA0", "disabled: " + bridge.ReasonPINRefused, func(n int) bool { return n == 1 }},
		{"ok CKR_FUNCTION_FAILED is a strike", "0x6", "disabled: " + bridge.ReasonPINStruck, func(n int) bool { return n == 1 }},
		{"ok CKR_DEVICE_REMOVED is tried again", "0x32", "unhealthy", func(n int) bool { return n >= 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pkcs11test.Build(t)
			m.SetLogin(tc.rv)
			b, stop := runPKCS11(t, pkcs11Bridge(t, hsmConfig(t, m, t.TempDir(), "a", "b")))
			waitFor(t, 10*time.Second, "both keys "+tc.state, func() bool {
				return signerState(b, "hsm-a") == tc.state && signerState(b, "hsm-b") == tc.state
			})
			time.Sleep(500 * time.Millisecond) // five probe intervals
			stop()
			if n := m.Logins(); !tc.logins(n) {
				t.Errorf("%d logins reached the module", n)
			}
			if !strings.HasPrefix(tc.state, "disabled") {
				return
			}
			if st := b.Status().Totals; st.PINRefused != 2 {
				t.Errorf("pinRefused %d, want 2 (both keys)", st.PINRefused)
			}
		})
	}
}
