package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/signer/sdftest"
)

// sdfSignerYAML is the YAML lines of an sdf signer on dev's key at index
// with the certificate cert and the password in a new PIN file.
func sdfSignerYAML(t *testing.T, dev *sdftest.Device, index int, cert, password string) []string {
	return []string{"name: machine-1", "type: sdf", "ebpCode: 3301964J31", "library: " + dev.Library,
		fmt.Sprintf("keyIndex: %d", index), "certFile: " + cert, "pinFile: " + writePIN(t, password), "sessions: 2"}
}

// TestLocalBridgeConfigSDF runs `ceb179 local --bridge-config` with a
// cipher machine behind its SDF library (the soft one, loaded by path),
// once on its SM2 key and once on its RSA-1024 key: the certificate file's
// certificate is registered for the signer's ebpCode, the banner shows its
// certNo, and a customs request for a two-order payment ends in an upload
// the simulator verified against that certificate.
func TestLocalBridgeConfigSDF(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	dev := sdftest.New(t, 0x0300000000000d01, 0x01691f90, sdftest.Options{})
	for _, tc := range []struct {
		name, cert, certNo, keyType string
		index                       int
	}{
		{"ok SM2", dev.SM2Cert, "0300000000000d01", "SM2 (SM3)", sdftest.SM2Index},
		{"ok RSA", dev.RSACert, "01691f90", "RSA-1024 (SHA-1)", sdftest.RSAIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			statusAddr := freeAddr(t)
			cfg := writeBridgeConfig(t, statusAddr, sdfSignerYAML(t, dev, tc.index, tc.cert, sdftest.Password)...)
			r := startLocal(t, "--bridge-config", cfg)
			for _, want := range []string{"machine-1", "sdf", "ebpCode 3301964J31", "certNo " + tc.certNo, tc.keyType} {
				if !strings.Contains(r.out.String(), want) {
					t.Errorf("banner lacks %q:\n%s", want, r.out)
				}
			}
			session := "bridge-sdf-" + strings.ToLower(tc.name[3:])
			r.ask(t, devstack.DemoOrderMultiB, session)
			r.waitFor(t, session+"  order "+devstack.DemoOrderMultiB+"  uploaded and accepted by customs", 60*time.Second, nil)
			if state, signs := bridgeSigner(t, statusAddr); state != "healthy" || signs < 1 {
				t.Errorf("hsmbridge signer %s with %d signatures, want healthy with at least 1", state, signs)
			}
			if c := r.stop(); c != exitOK {
				t.Fatalf("exit %d:\n%s", c, r.out)
			}
		})
	}
	if calls, wrong := dev.Counts(t); calls < 4 || wrong != 0 {
		t.Errorf("the device saw %d access-right calls, %d wrong; want at least 4 (two sessions a run), none wrong", calls, wrong)
	}
}

// TestLocalBridgeConfigSDFWrongPassword proves the access password's
// safety across a run, a restart and `hsmbridge check`: a wrong password
// reaches the cipher machine exactly once (counted by the soft SDF
// library itself), the signer is disabled while customs requests arrive
// and probe intervals pass, the restarted stack sends nothing, and
// neither does check, which says why.
func TestLocalBridgeConfigSDFWrongPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	dev := sdftest.New(t, 0x0300000000000d02, 0x01691f91, sdftest.Options{})
	statusAddr := freeAddr(t)
	cfg := writeBridgeConfig(t, statusAddr, sdfSignerYAML(t, dev, sdftest.SM2Index, dev.SM2Cert, "12121212")...)
	waitDisabled := func(r *localRun) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if state, _ := bridgeSigner(t, statusAddr); strings.HasPrefix(state, "disabled") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("signer not disabled after a wrong password; output:\n%s", r.out)
			}
		}
	}
	once := func(when string) {
		t.Helper()
		if calls, wrong := dev.Counts(t); calls != 1 || wrong != 1 {
			t.Fatalf("%s: the device saw %d access-right calls, %d wrong; want exactly 1 of each", when, calls, wrong)
		}
	}

	r := startLocal(t, "--bridge-config", cfg)
	r.ask(t, devstack.DemoOrderSingle, "sdf-pin-1")
	waitDisabled(r)
	r.ask(t, devstack.DemoOrderMultiA, "sdf-pin-2")
	time.Sleep(3 * time.Second) // several probe intervals (1 s)
	once("run")
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d:\n%s", c, r.out)
	}

	r = startLocal(t, "--bridge-config", cfg)
	waitDisabled(r)
	time.Sleep(2 * time.Second)
	once("restart")
	if strings.Contains(r.out.String(), "accepted by customs") {
		t.Fatalf("an upload was accepted without a signature:\n%s", r.out)
	}
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d:\n%s", c, r.out)
	}

	// `hsmbridge check` on the same file: bridge.Check is what it runs.
	c, err := devstack.LoadBridgeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := bridge.Check(context.Background(), *c, slog.New(slog.DiscardHandler), &out); err == nil || !strings.Contains(out.String(), "no PIN sent") {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	once("check")
}
