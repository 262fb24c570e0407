package main

import (
	"bytes"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCrossCompileWindows builds ceb179 for windows/amd64 as a platform
// engineer's PC runs it (`GOOS=windows GOARCH=amd64 go build ./cmd/ceb179`),
// so that `make test` catches a build break on the platform the tests do
// not run on. CGO_ENABLED=0 is what a cross-build gets.
func TestCrossCompileWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow; skipped in -short")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "ceb179.exe")
	cmd := exec.Command(gotool, "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=windows", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("GOOS=windows GOARCH=amd64 go build ./cmd/ceb179: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("MZ")) {
		t.Fatalf("%s is not a Windows executable", out)
	}
}
