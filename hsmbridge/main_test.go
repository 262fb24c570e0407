package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/ceb179/ceb179/internal/signer/sdftest"
)

func TestCheckCommand(t *testing.T) {
	t.Setenv(bridge.EnvStateDir, t.TempDir())
	dir := t.TempDir()
	key := eporttest.NewSM2Key(t, 0x03000000000cde6f)
	ctl := eporttest.New(t, key.Signer, key.Cert, "88888888")
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile, certFile := write("key.pem", key.KeyPEM), write("cert.pem", key.CertPEM)
	goodPIN, badPIN := write("good.pin", []byte("88888888\n")), write("bad.pin", []byte("11111111\n"))
	notepadPIN, spacePIN := write("notepad.pin", []byte("\xEF\xBB\xBF88888888\r\n")), write("space.pin", []byte("88888888 \r\n"))
	base := "queueURL: http://127.0.0.1:1/q\nuploadFunction: upload\nsigners:\n"
	for _, tc := range []struct {
		name    string
		signers string
		code    int
		want    string
	}{
		{"ok key file", "  - {name: dev, ebpCode: E1, type: keyfile, keyFile: " + keyFile + ", certFile: " + certFile + "}\n", 0, "certNo 03000000000cde6f, key SM2-SM3"},
		{"ok e-port card", "  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + goodPIN + "}\n", 0, "OK   card"},
		{"ok e-port PIN file from Notepad", "  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + notepadPIN + "}\n", 0, "OK   card"},
		{"fail e-port wrong PIN", "  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + badPIN + "}\n", 1, "PIN refused"},
		{"fail e-port PIN file with a trailing space", "  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + spacePIN + "}\n", 1, "a space at character 9 of 9"},
		{"fail bad config", "  - {name: x, type: magic}\n", 2, "type must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write("hsmbridge.yaml", []byte(base+tc.signers))
			var out, errOut bytes.Buffer
			code := run([]string{"-config", cfg, "check"}, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
			all := out.String() + errOut.String()
			if !strings.Contains(all, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, all)
			}
			for _, pin := range []string{"88888888", "11111111"} {
				if strings.Contains(all, pin) {
					t.Errorf("output holds a PIN:\n%s", all)
				}
			}
		})
	}
	if w := ctl.WrongPINs(); w != 1 {
		t.Errorf("check sent %d wrong PINs to the card, want 1", w)
	}
}

func TestAlarmLevel(t *testing.T) {
	var buf bytes.Buffer
	log, closeLog, err := newLogger(bridgeConfig(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Log(t.Context(), bridge.LevelAlarm, "PIN refused", "alarm", "pin_refused")
	log.Error("plain error")
	out := buf.String()
	if !strings.Contains(out, `"level":"ALARM"`) || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("log output:\n%s", out)
	}
}

func bridgeConfig() bridge.Config { return bridge.Config{LogLevel: "info"} }

// TestPINResetCommand refuses a wrong PIN once through `check`, shows
// that a second `check`, also from a copy of the configuration in another
// folder, sends no PIN and says why, then clears the marker with
// `pin-reset` and checks again with the fixed PIN file. A PIN file changed
// to another value is tried without pin-reset.
func TestPINResetCommand(t *testing.T) {
	stateDir := t.TempDir()
	t.Setenv(bridge.EnvStateDir, stateDir)
	dir := t.TempDir()
	key := eporttest.NewSM2Key(t, 0x0a0b)
	ctl := eporttest.New(t, key.Signer, key.Cert, "88888888")
	pinFile := filepath.Join(dir, "card.pin")
	setPIN := func(pin string) {
		t.Helper()
		if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "hsmbridge.yaml")
	yaml := "queueURL: http://127.0.0.1:1/q\nuploadFunction: upload\nsigners:\n" +
		"  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + pinFile + "}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "hsmbridge.yaml")
	if err := os.WriteFile(copied, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmdAt := func(cfg string, want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(append([]string{"-config", cfg}, args...), &out, &errOut); code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	cmd := func(want int, args ...string) string { t.Helper(); return cmdAt(cfg, want, args...) }
	setPIN("11111111")
	cmd(1, "check")
	if out := cmd(1, "check"); !strings.Contains(out, "no PIN sent") || !strings.Contains(out, "pin-reset card") {
		t.Errorf("second check does not say why:\n%s", out)
	}
	if out := cmdAt(copied, 1, "check"); !strings.Contains(out, "no PIN sent") {
		t.Errorf("check from a copy in another folder does not say why:\n%s", out)
	}
	if got := ctl.PINRequests(); got != 1 {
		t.Fatalf("three checks sent %d PIN-bearing requests, want 1", got)
	}
	if _, err := os.Stat(filepath.Join(stateDir, bridge.PINRefusedDir, ctl.CertNo()+".json")); err != nil {
		t.Errorf("no marker in the state directory: %v", err)
	}
	if out := cmd(2, "pin-reset"); !strings.Contains(out, ctl.CertNo()) || !strings.Contains(out, "refused") {
		t.Errorf("pin-reset without a name does not list the marker:\n%s", out)
	}
	cmd(1, "pin-reset", "someone-else")
	if out := cmd(0, "pin-reset", "card"); !strings.Contains(out, ctl.CertNo()) {
		t.Errorf("pin-reset output:\n%s", out)
	}
	setPIN("88888888")
	cmd(0, "check")
	// A changed PIN file is tried once without pin-reset.
	setPIN("22222222")
	cmd(1, "check")
	setPIN("88888888")
	cmd(0, "check")
	if got, w := ctl.PINRequests(), ctl.WrongPINs(); got != 4 || w != 2 {
		t.Errorf("PIN-bearing requests %d, wrong PINs %d; want 4, 2", got, w)
	}
}

// TestCheckCommandSDF runs `hsmbridge check` (in this process) on a
// cipher machine behind its SDF library; see checkSDFScenario.
func TestCheckCommandSDF(t *testing.T) {
	checkSDFScenario(t, func(t *testing.T, cfg string, want int) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run([]string{"-config", cfg, "check"}, &out, &errOut); code != want {
			t.Fatalf("exit %d, want %d\n%s%s", code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	})
}

// checkSDFScenario runs `hsmbridge check` through check (which returns
// its output) on the soft SDF library, loaded by path: two signers on the
// device's SM2 and RSA keys each make a test signature verified against
// their certificate and print their certNo. A wrong access password is
// then sent to the device once: the second check sends nothing and says
// why. The device counts the passwords it saw.
func checkSDFScenario(t *testing.T, check func(t *testing.T, cfg string, want int) string) {
	t.Setenv(bridge.EnvStateDir, t.TempDir())
	dev := sdftest.New(t, 0x0300000000000cdf, 0x01691f80, sdftest.Options{})
	dir := t.TempDir()
	write := func(name, s string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := write("good.pin", sdftest.Password+"\n"), write("bad.pin", "11223344\n")
	signerYAML := func(name string, index int, cert, pin string) string {
		return fmt.Sprintf("  - {name: %s, ebpCode: E1, type: sdf, library: %s, keyIndex: %d, certFile: %s, pinFile: %s, sessions: 2}\n",
			name, dev.Library, index, cert, pin)
	}
	base := "queueURL: http://127.0.0.1:1/q\nuploadFunction: upload\nsigners:\n"
	checked := func(cfg string, want int) string {
		t.Helper()
		out := check(t, cfg, want)
		if strings.Contains(out, sdftest.Password) || strings.Contains(out, "11223344") {
			t.Fatalf("output holds a password:\n%s", out)
		}
		return out
	}

	ok := write("ok.yaml", base+signerYAML("sm2", sdftest.SM2Index, dev.SM2Cert, good)+signerYAML("rsa", sdftest.RSAIndex, dev.RSACert, good))
	out := checked(ok, 0)
	for _, want := range []string{"OK   sm2 (ebpCode E1): certNo 0300000000000cdf, key SM2-SM3", "OK   rsa (ebpCode E1): certNo 01691f80, key RSA-SHA1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	wrong := write("wrong.yaml", base+signerYAML("sm2", sdftest.SM2Index, dev.SM2Cert, bad))
	if out := checked(wrong, 1); !strings.Contains(out, "PIN refused") || !strings.Contains(out, "SDR_PRKRERR") {
		t.Errorf("first check with a wrong password:\n%s", out)
	}
	if out := checked(wrong, 1); !strings.Contains(out, "no PIN sent") {
		t.Errorf("second check does not say why:\n%s", out)
	}
	if calls, w := dev.Counts(t); calls != 5 || w != 1 {
		t.Fatalf("the device saw %d access-right calls, %d wrong; want 5 (2+2 sessions, then one wrong), 1", calls, w)
	}
}
