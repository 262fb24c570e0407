package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

func TestCheckCommand(t *testing.T) {
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
	base := "queueURL: http://127.0.0.1:1/q\nuploadFunction: upload\nsigners:\n"
	for _, tc := range []struct {
		name    string
		signers string
		code    int
		want    string
	}{
		{"ok key file", "  - {name: dev, ebpCode: E1, type: keyfile, keyFile: " + keyFile + ", certFile: " + certFile + "}\n", 0, "certNo 03000000000cde6f, key SM2-SM3"},
		{"ok e-port card", "  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + goodPIN + "}\n", 0, "OK   card"},
		{"fail e-port wrong PIN", "  - {name: card, ebpCode: E1, type: eport, url: " + ctl.URL() + ", pinFile: " + badPIN + "}\n", 1, "PIN refused"},
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
