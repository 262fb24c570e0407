// Package softhsmtest makes a SoftHSM2 token for tests of the PKCS#11
// signer: a cipher machine on one machine, with a real PKCS#11 module.
package softhsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// Token creates a SoftHSM2 token labelled "ceb179" (user PIN 1234) in a
// temporary directory, imports a fresh RSA-1024 key into it (label "card",
// id 01, serial 01691f7f as on an older card) and points SOFTHSM2_CONF at
// it for the rest of the test. It returns the module path and the key.
// SOFTHSM2_MODULE names the module (the Makefile sets it); softhsm2-util
// must be on PATH.
func Token(t *testing.T) (module string, key eporttest.Key) {
	t.Helper()
	module = os.Getenv("SOFTHSM2_MODULE")
	if module == "" {
		module = "/usr/lib/softhsm/libsofthsm2.so"
	}
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("SoftHSM2 module: %v (install softhsm2 or set SOFTHSM2_MODULE)", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	key = eporttest.NewRSAKey(t, 0x01691f7f)
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, key.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--init-token", "--free", "--label", "ceb179", "--pin", "1234", "--so-pin", "5678"},
		{"--import", keyFile, "--token", "ceb179", "--label", "card", "--id", "01", "--pin", "1234"},
	} {
		if out, err := exec.Command("softhsm2-util", args...).CombinedOutput(); err != nil {
			t.Fatalf("softhsm2-util %s: %v\n%s", args[0], err, out)
		}
	}
	return module, key
}
