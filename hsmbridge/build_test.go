package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// TestCrossCompile builds the binaries hsmbridge ships as, without cgo, so
// that `make test` (and CI) catches a build break on a platform the tests
// do not run on: the card's PC is usually Windows. CGO_ENABLED=0 also
// proves the !cgo PKCS#11 stub keeps the pure-Go build working, and that
// the sdf signer needs no cgo: each build compiles its SDF loader (purego
// on Linux, LoadLibraryEx on Windows), and the build for this machine
// loads the soft SDF library and signs with it in `hsmbridge check`. The
// nosdf build, for machines that need a fully static binary, has no
// dynamic loader at all.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow; skipped in -short")
	}
	for _, tc := range []struct{ name, goos, goarch, loader string }{
		{"ok windows/amd64", "windows", "amd64", "sdf_dl_windows.go"},
		{"ok linux/amd64", "linux", "amd64", "sdf_dl_linux.go"},
		{"ok linux/arm64", "linux", "arm64", "sdf_dl_linux.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if files := signerFiles(t, tc.goos, tc.goarch, ""); !strings.Contains(files, tc.loader) {
				t.Fatalf("the %s/%s build of package signer lacks %s: %s", tc.goos, tc.goarch, tc.loader, files)
			}
			exe := lambdatest.Build(t, tc.goos, tc.goarch, "./hsmbridge")["./hsmbridge"]
			if tc.goos == runtime.GOOS && tc.goarch == runtime.GOARCH {
				checkSDF(t, exe)
			}
		})
	}
	t.Run("ok linux/amd64 nosdf is static", func(t *testing.T) {
		if files := signerFiles(t, "linux", "amd64", "nosdf"); !strings.Contains(files, "sdf_dl_none.go") {
			t.Fatalf("the nosdf build of package signer: %s", files)
		}
		exe := lambdatest.BuildTags(t, "linux", "amd64", "nosdf", "./hsmbridge")["./hsmbridge"]
		f, err := elf.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Fatalf("the nosdf build is dynamically linked (program header %s)", p.Type)
			}
		}
	})
}

// signerFiles lists the Go files of package signer in a build for
// goos/goarch with tags, without cgo.
func signerFiles(t *testing.T, goos, goarch, tags string) string {
	t.Helper()
	cmd := exec.Command(lambdatest.GoTool(), "list", "-tags", tags, "-f", "{{.GoFiles}}", "../internal/signer")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return string(out)
}

// checkSDF runs the built hsmbridge's `check` against the soft SDF
// library, one process a check; see checkSDFScenario.
func checkSDF(t *testing.T, exe string) {
	checkSDFScenario(t, func(t *testing.T, cfg string, want int) string {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.Command(exe, "-config", cfg, "check")
		cmd.Stdout, cmd.Stderr = &out, &out
		code := 0
		var exit *exec.ExitError
		if err := cmd.Run(); errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("hsmbridge check: exit %d, want %d\n%s", code, want, out.String())
		}
		return out.String()
	})
}
