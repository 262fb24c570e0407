//go:build softhsm2 && cgo

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/signer/softhsmtest"
)

// TestLocalBridgeConfigSoftHSM runs `ceb179 local --bridge-config` with a
// PKCS#11 signer on a SoftHSM2 token holding an RSA-1024 key (as on older
// cards): the certificate file's certificate is registered for the
// signer's ebpCode, the banner shows it, and a customs request ends in an
// upload the simulator verified. SOFTHSM2_MODULE names the module (the
// Makefile sets it); softhsm2-util must be on PATH.
func TestLocalBridgeConfigSoftHSM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	module, key := softhsmtest.Token(t)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, key.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	statusAddr := freeAddr(t)
	cfg := writeBridgeConfig(t, statusAddr,
		"name: hsm-1", "type: pkcs11", "ebpCode: 3301964J31", "module: "+module, "tokenLabel: ceb179",
		"keyLabel: card", "certFile: "+certFile, "concurrency: 2", "pinFile: "+writePIN(t, "1234"))
	r := startLocal(t, "--bridge-config", cfg)
	for _, want := range []string{"hsm-1", "pkcs11", "ebpCode 3301964J31", "certNo 01691f7f", "RSA-1024 (SHA-1)"} {
		if !strings.Contains(r.out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, r.out)
		}
	}
	r.ask(t, devstack.DemoOrderMultiA, "bridge-hsm-1")
	r.waitFor(t, "bridge-hsm-1  order "+devstack.DemoOrderMultiA+"  uploaded and accepted by customs", 60*time.Second, nil)
	if state, signs := bridgeSigner(t, statusAddr); state != "healthy" || signs < 1 {
		t.Errorf("hsmbridge signer %s with %d signatures, want healthy with at least 1", state, signs)
	}
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d:\n%s", c, r.out)
	}
}
