package bridge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer"
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
				// A test has no machine state directory: it must name one.
				if _, err := c.SignerSpecs(quietLogger()); err == nil || !strings.Contains(err.Error(), bridge.EnvStateDir) {
					t.Errorf("a card without a state directory in a test: %v, want an error naming %s", err, bridge.EnvStateDir)
				}
			}},
		{"fail e-port url scheme", head + "signers:\n  - {name: c1, ebpCode: E1, type: eport, pinEnv: P, url: 'http://127.0.0.1:61232'}\n", nil, "ws://", nil},
		{"ok sdf cipher machine", head + "stateDir: /tmp/x\nsigners:\n  - {name: m, ebpCode: E1, type: sdf, library: /opt/sw/libswsds.so, keyIndex: 1, certFile: c.pem, pinFile: /p, sessions: 8, callTimeout: 3s, eccSignatureLayout: 32}\n", nil, "",
			func(t *testing.T, c bridge.Config) {
				sc := c.Signers[0]
				if sc.Library != "/opt/sw/libswsds.so" || sc.KeyIndex == nil || *sc.KeyIndex != 1 || sc.Sessions != 8 || sc.CallTimeout != 3*time.Second || sc.ECCSignatureLayout != "32" {
					t.Errorf("signer = %+v", sc)
				}
			}},
		{"ok sdf key index 0", head + "signers:\n  - {name: m, ebpCode: E1, type: sdf, library: /l.so, keyIndex: 0, certFile: c.pem, pinEnv: P}\n", nil, "",
			func(t *testing.T, c bridge.Config) {
				if _, err := c.SignerSpecs(quietLogger()); err == nil || !strings.Contains(err.Error(), "stateDir") {
					t.Errorf("a cipher machine without a state directory: %v, want a stateDir error", err)
				}
			}},
		{"fail sdf without key index", head + "signers:\n  - {name: m, ebpCode: E1, type: sdf, library: /l.so, certFile: c.pem, pinFile: /p}\n", nil, "library, keyIndex and certFile", nil},
		{"fail sdf without password", head + "signers:\n  - {name: m, ebpCode: E1, type: sdf, library: /l.so, keyIndex: 1, certFile: c.pem}\n", nil, "access password needs pinFile or pinEnv", nil},
		{"fail sdf layout", head + "signers:\n  - {name: m, ebpCode: E1, type: sdf, library: /l.so, keyIndex: 1, certFile: c.pem, pinFile: /p, eccSignatureLayout: 48}\n", nil, "eccSignatureLayout", nil},
		{"fail sdf sessions", head + "signers:\n  - {name: m, ebpCode: E1, type: sdf, library: /l.so, keyIndex: 1, certFile: c.pem, pinFile: /p, sessions: -1}\n", nil, "sessions", nil},
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

// TestStateDirOneForTheMachine checks that the PIN markers do not depend
// on where the configuration file is: two configurations in two folders
// share the machine's state directory (here HSMBRIDGE_STATE_DIR, as a test
// has no machine directory), an explicit stateDir wins, and markers an
// older hsmbridge kept next to a configuration are imported once.
func TestStateDirOneForTheMachine(t *testing.T) {
	machine := t.TempDir()
	getenv := func(k string) string {
		if k == bridge.EnvStateDir {
			return machine
		}
		return ""
	}
	load := func(t *testing.T, dir, line string, getenv func(string) string) bridge.Config {
		t.Helper()
		p := filepath.Join(dir, "hsmbridge.yaml")
		y := "queueURL: q\nuploadFunction: u\n" + line + "signers:\n  - {name: c, ebpCode: E1, type: eport, pinEnv: P}\n"
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := bridge.LoadConfig(p, getenv)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	guardDir := func(t *testing.T, c bridge.Config) string {
		t.Helper()
		g, _, err := c.PINGuard()
		if err != nil {
			t.Fatal(err)
		}
		return g.Dir()
	}
	t.Run("ok two folders, one memory", func(t *testing.T) {
		a, b := load(t, t.TempDir(), "", getenv), load(t, t.TempDir(), "", getenv)
		if da, db := guardDir(t, a), guardDir(t, b); da != db || da != filepath.Join(machine, bridge.PINRefusedDir) {
			t.Errorf("marker dirs %q and %q, want both in %s", da, db, machine)
		}
	})
	t.Run("fail no machine directory in a test", func(t *testing.T) {
		c := load(t, t.TempDir(), "", func(string) string { return "" })
		if _, _, err := c.PINGuard(); err == nil || !strings.Contains(err.Error(), bridge.EnvStateDir) {
			t.Errorf("PINGuard = %v, want an error naming %s", err, bridge.EnvStateDir)
		}
	})
	for _, tc := range []struct {
		name, line, want string
	}{
		{"ok relative", "stateDir: var/hsm\n", filepath.Join("var", "hsm")},
		{"ok absolute", "stateDir: " + filepath.Join(machine, "abs") + "\n", filepath.Join(machine, "abs")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := load(t, dir, tc.line, func(string) string { return "" })
			want := tc.want
			if !filepath.IsAbs(want) {
				want = filepath.Join(dir, want)
			}
			if got := guardDir(t, c); got != filepath.Join(want, bridge.PINRefusedDir) {
				t.Errorf("marker dir = %q, want in %q", got, want)
			}
		})
	}
	t.Run("ok markers next to the configuration are imported once", func(t *testing.T) {
		dir := t.TempDir()
		old := filepath.Join(dir, "state", bridge.PINRefusedDir)
		if err := os.MkdirAll(old, 0o700); err != nil {
			t.Fatal(err)
		}
		marker := `{"card":"0a0b","signers":["card"],"refused":[{"salt":"00","hash":"11","signer":"card","at":"2025-01-02T03:04:05Z","reason":"SW=63C7"}]}`
		if err := os.WriteFile(filepath.Join(old, "0a0b.json"), []byte(marker), 0o600); err != nil {
			t.Fatal(err)
		}
		c := load(t, dir, "", getenv)
		g, n, err := c.PINGuard()
		if err != nil || n != 1 {
			t.Fatalf("PINGuard imported %d, %v; want 1", n, err)
		}
		rs, err := g.Refusals()
		if err != nil || len(rs) != 1 || rs[0].Card != "0a0b" || rs[0].Last().Kind != "refused" {
			t.Fatalf("markers after the import: %+v, %v", rs, err)
		}
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Errorf("the old folder is still there: %v", err)
		}
		// pin-reset stays done: nothing is imported again.
		if _, err := g.Reset("card"); err != nil {
			t.Fatal(err)
		}
		if _, n, err := c.PINGuard(); err != nil || n != 0 {
			t.Errorf("second PINGuard imported %d, %v; want 0", n, err)
		}
	})
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
	dir := t.TempDir()
	spacePIN := filepath.Join(dir, "space.pin")
	if err := os.WriteFile(spacePIN, []byte("24682468 \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	guard, err := signer.NewPINGuard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sc      bridge.SignerConfig
		guard   *signer.PINGuard
		wantErr string
	}{
		{"ok PIN from env", bridge.SignerConfig{Name: "c", EbpCode: "E", Type: "eport", PINEnv: "HSMBRIDGE_TEST_PIN"}, guard, ""},
		{"ok key file needs no guard", bridge.SignerConfig{Name: "k", EbpCode: "E", Type: "keyfile", KeyFile: "k", CertFile: "c"}, nil, ""},
		{"fail missing PIN file", bridge.SignerConfig{Name: "c", EbpCode: "E", Type: "eport", PINFile: "/nonexistent/pin"}, guard, "read PIN file"},
		{"fail PIN file with a trailing space", bridge.SignerConfig{Name: "c", EbpCode: "E", Type: "eport", PINFile: spacePIN}, guard, "a space at character 9"},
		{"fail card without a guard", bridge.SignerConfig{Name: "c", EbpCode: "E", Type: "eport", PINEnv: "HSMBRIDGE_TEST_PIN"}, nil, "no PIN guard"},
		{"fail cipher machine without a guard", bridge.SignerConfig{Name: "h", EbpCode: "E", Type: "pkcs11", Module: "/x.so", TokenLabel: "t", KeyLabel: "k", PINEnv: "HSMBRIDGE_TEST_PIN"}, nil, "no PIN guard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HSMBRIDGE_TEST_PIN", "24682468")
			spec, err := tc.sc.SpecWithGuard(quietLogger(), tc.guard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "24682468") {
					t.Error("error holds the PIN")
				}
				return
			}
			if err != nil || spec.Open == nil {
				t.Fatalf("spec %+v, err = %v", spec, err)
			}
		})
	}
}
