package main

import (
	"bytes"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCrossCompile builds the static binaries hsmbridge ships as, so that
// `make test` (and CI) catches a build break on a platform the tests do
// not run on: the card's PC is usually Windows. CGO_ENABLED=0 also proves
// the !cgo PKCS#11 stub keeps the pure-Go build working.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow; skipped in -short")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	for _, tc := range []struct{ name, goos, goarch string }{
		{"ok windows/amd64", "windows", "amd64"},
		{"ok linux/amd64", "linux", "amd64"},
		{"ok linux/arm64", "linux", "arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(gotool, "build", "-o", t.TempDir()+string(filepath.Separator), "./...")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+tc.goos, "GOARCH="+tc.goarch)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("GOOS=%s GOARCH=%s go build ./hsmbridge/...: %v\n%s", tc.goos, tc.goarch, err, stderr.String())
			}
		})
	}
}
