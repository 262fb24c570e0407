package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/signer/sdftest"
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
// library: an SM2 and an RSA signer each verify a test signature, and a
// wrong password reaches the device once over two processes.
func checkSDF(t *testing.T, exe string) {
	dev := sdftest.New(t, 0x0300000000000ce2, 0x01691f81, sdftest.Options{})
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := write("good.pin", sdftest.Password+"\n"), write("bad.pin", "99999999\n")
	config := func(name string, signers ...string) string {
		return write(name, "queueURL: http://127.0.0.1:1/q\nuploadFunction: upload\nsigners:\n"+strings.Join(signers, ""))
	}
	entry := func(name string, index int, cert, pin string) string {
		return fmt.Sprintf("  - {name: %s, ebpCode: E1, type: sdf, library: %s, keyIndex: %d, certFile: %s, pinFile: %s, sessions: 2}\n",
			name, dev.Library, index, cert, pin)
	}
	check := func(cfg string, want int) string {
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
	}
	out := check(config("ok.yaml", entry("sm2", sdftest.SM2Index, dev.SM2Cert, good), entry("rsa", sdftest.RSAIndex, dev.RSACert, good)), 0)
	for _, want := range []string{"certNo 0300000000000ce2, key SM2-SM3", "certNo 01691f81, key RSA-SHA1"} {
		if !strings.Contains(out, want) {
			t.Errorf("hsmbridge check output lacks %q:\n%s", want, out)
		}
	}
	wrong := config("wrong.yaml", entry("rsa", sdftest.RSAIndex, dev.RSACert, bad))
	check(wrong, 1)
	if out := check(wrong, 1); !strings.Contains(out, "no PIN sent") {
		t.Errorf("second process does not say why it sent nothing:\n%s", out)
	}
	if calls, w := dev.Counts(t); calls != 5 || w != 1 {
		t.Fatalf("the device saw %d access-right calls, %d wrong; want 5, 1", calls, w)
	}
}
