package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// TestCrossCompileWindows builds ceb179 for windows/amd64 as a platform
// engineer's PC runs it (`GOOS=windows GOARCH=amd64 go build ./cmd/ceb179`),
// so that `make test` catches a build break on the platform the tests do
// not run on. CGO_ENABLED=0 is what a cross-build gets.
func TestCrossCompileWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow; skipped in -short")
	}
	exe := lambdatest.Build(t, "windows", "amd64", "./cmd/ceb179")["./cmd/ceb179"]
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("MZ")) {
		t.Fatalf("%s is not a Windows executable", exe)
	}
}
