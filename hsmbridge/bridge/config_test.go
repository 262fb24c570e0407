package bridge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
)

func TestParseConfig(t *testing.T) {
	const head = "queueURL: https://sqs.example/q\nuploadFunction: upload\n"
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name    string
		yaml    string
		env     map[string]string
		wantErr string
		check   func(*testing.T, bridge.Config)
	}{
		{"ok e-port card with defaults", head + "signers:\n  - {name: c1, ebpCode: E1, type: eport, pinEnv: PIN1}\n", nil, "",
			func(t *testing.T, c bridge.Config) {
				if c.StatusAddr != bridge.DefaultStatusAddr || c.Signers[0].Type != "eport" {
					t.Errorf("config = %+v", c)
				}
			}},
		{"ok durations and pkcs11", head + "visibility: 90s\nsignTimeout: 2s\nsigners:\n  - {name: h, ebpCode: E1, type: pkcs11, module: /x.so, tokenLabel: t, keyLabel: k, pinFile: /p, sm2Mechanism: '0x80000101', concurrency: 4}\n", nil, "",
			func(t *testing.T, c bridge.Config) {
				o := c.Options()
				if o.Visibility != 90*time.Second || o.SignTimeout != 2*time.Second || o.StatusAddr != bridge.DefaultStatusAddr {
					t.Errorf("options = %+v", o)
				}
			}},
		{"ok environment overrides", "uploadFunction: upload\nsigners:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n",
			map[string]string{"HSMBRIDGE_QUEUE_URL": "https://sqs.example/env", "HSMBRIDGE_MAX_BACKLOG": "50", "HSMBRIDGE_STATUS_ADDR": "off"}, "",
			func(t *testing.T, c bridge.Config) {
				if c.QueueURL != "https://sqs.example/env" || c.MaxBacklog != 50 || c.Options().StatusAddr != "" {
					t.Errorf("config = %+v", c)
				}
			}},
		{"ok kms key inherits the region", "region: cn-north-1\n" + head + "signers:\n  - {name: k, ebpCode: E1, type: kms, kmsKeyID: alias/sign, certFile: c.pem}\n", nil, "",
			func(t *testing.T, c bridge.Config) {
				specs, err := c.SignerSpecs(quietLogger())
				if err != nil || len(specs) != 1 || specs[0].Open == nil {
					t.Errorf("specs = %v, %v", specs, err)
				}
			}},
		{"fail kms without key", head + "signers:\n  - {name: k, ebpCode: E1, type: kms, certFile: c.pem}\n", nil, "kmsKeyID", nil},
		{"fail unknown key", head + "queueUrl: typo\nsigners:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n", nil, "queueUrl", nil},
		{"fail status endpoint on the network", head + "statusAddr: 0.0.0.0:9179\nsigners:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n", nil, "loopback", nil},
		{"fail card without PIN source", head + "signers:\n  - {name: c1, ebpCode: E1, type: eport}\n", nil, "pinFile or pinEnv", nil},
		{"fail no queue", "uploadFunction: u\nsigners:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n", nil, "queueURL", nil},
		{"fail duplicate names", head + "signers:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n", nil, "used twice", nil},
		{"fail bad mechanism", head + "signers:\n  - {name: h, ebpCode: E1, type: pkcs11, module: /x.so, tokenLabel: t, keyLabel: k, pinFile: /p, sm2Mechanism: CKM_SM2}\n", nil, "sm2Mechanism", nil},
		{"fail e-port ws to the network", head + "signers:\n  - {name: c1, ebpCode: E1, type: eport, pinEnv: P, url: 'ws://192.168.1.20:61232'}\n", nil, "loopback", nil},
		{"ok e-port wss to the network", head + "signers:\n  - {name: c1, ebpCode: E1, type: eport, pinEnv: P, url: 'wss://card-pc.lan:61231'}\n", nil, "",
			func(t *testing.T, c bridge.Config) {
				if _, err := c.SignerSpecs(quietLogger()); err == nil || !strings.Contains(err.Error(), "stateDir") {
					t.Errorf("a card without a state directory: %v, want a stateDir error", err)
				}
			}},
		{"fail e-port url scheme", head + "signers:\n  - {name: c1, ebpCode: E1, type: eport, pinEnv: P, url: 'http://127.0.0.1:61232'}\n", nil, "ws://", nil},
		{"fail bad backlog variable", head + "signers:\n  - {name: d, ebpCode: E1, type: keyfile, keyFile: k, certFile: c}\n", map[string]string{"HSMBRIDGE_MAX_BACKLOG": "lots"}, "HSMBRIDGE_MAX_BACKLOG", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := bridge.ParseConfig([]byte(tc.yaml), env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestStateDirNextToConfig checks that LoadConfig puts the state
// directory next to the configuration file unless told otherwise.
func TestStateDirNextToConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, line, want string
	}{
		{"ok default", "", filepath.Join(dir, "state")},
		{"ok relative", "stateDir: var/hsm\n", filepath.Join(dir, "var", "hsm")},
		{"ok absolute", "stateDir: " + filepath.Join(dir, "abs") + "\n", filepath.Join(dir, "abs")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "hsmbridge.yaml")
			y := "queueURL: q\nuploadFunction: u\n" + tc.line + "signers:\n  - {name: c, ebpCode: E1, type: eport, pinEnv: P}\n"
			if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := bridge.LoadConfig(p, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			if c.StateDir != tc.want {
				t.Errorf("stateDir = %q, want %q", c.StateDir, tc.want)
			}
			if got := c.PINGuard().Dir(); got != filepath.Join(tc.want, bridge.PINRefusedDir) {
				t.Errorf("marker dir = %q", got)
			}
		})
	}
}

func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "dist", "hsmbridge.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bridge.ParseConfig(b, func(string) string { return "" }); err != nil {
		t.Fatalf("example config: %v", err)
	}
}

func TestSignerSpecsReadPINs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sc      bridge.SignerConfig
		wantErr bool
	}{
		{"ok PIN from env", bridge.SignerConfig{Name: "c", EbpCode: "E", Type: "eport", PINEnv: "HSMBRIDGE_TEST_PIN"}, false},
		{"fail missing PIN file", bridge.SignerConfig{Name: "c", EbpCode: "E", Type: "eport", PINFile: "/nonexistent/pin"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HSMBRIDGE_TEST_PIN", "24682468")
			spec, err := tc.sc.Spec(quietLogger())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && spec.Open == nil {
				t.Error("no opener")
			}
			if err != nil && strings.Contains(err.Error(), "24682468") {
				t.Error("error holds the PIN")
			}
		})
	}
}
