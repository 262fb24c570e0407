package main

import (
	"testing"

	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// TestCrossCompile builds the static binaries hsmbridge ships as, so that
// `make test` (and CI) catches a build break on a platform the tests do
// not run on: the card's PC is usually Windows. CGO_ENABLED=0 also proves
// the !cgo PKCS#11 stub keeps the pure-Go build working.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow; skipped in -short")
	}
	for _, tc := range []struct{ name, goos, goarch string }{
		{"ok windows/amd64", "windows", "amd64"},
		{"ok linux/amd64", "linux", "amd64"},
		{"ok linux/arm64", "linux", "arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lambdatest.Build(t, tc.goos, tc.goarch, "./hsmbridge")
		})
	}
}
