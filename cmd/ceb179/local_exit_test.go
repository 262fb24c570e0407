package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The command built once for the tests that run it as a process.
var (
	builtOnce sync.Once
	builtDir  string
	builtBin  string
	builtErr  error
)

// builtCommand builds ceb179 once per test binary (into a directory
// TestMain removes) and returns the executable. It skips under -short or
// without the go tool.
func builtCommand(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	// go test puts its own GOROOT/bin first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	builtOnce.Do(func() {
		if builtDir, builtErr = os.MkdirTemp("", "ceb179-cmd-"); builtErr != nil {
			return
		}
		builtBin = filepath.Join(builtDir, "ceb179")
		if out, err := exec.Command(goTool, "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			builtErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtBin
}

// syncBuffer is a buffer two goroutines may use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitHealthy waits until addr answers /healthz, or the process ends.
func waitHealthy(t *testing.T, addr string, exited <-chan struct{}, out *syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("ended before it was up:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not up after 90 s:\n%s", out)
		}
	}
}

// TestLocalExitStatus runs `ceb179 local` as a process: after a clean
// start, Ctrl-C (SIGINT) stops it with a summary and exit status 0; a
// stack that cannot start exits 1. (TestLocalCommand stops a stack on a
// data folder, which runs in a second program, the same way.)
func TestLocalExitStatus(t *testing.T) {
	bin := builtCommand(t)

	t.Run("ok Ctrl-C after a clean start exits 0", func(t *testing.T) {
		addr := freeAddr(t)
		var out syncBuffer
		cmd := exec.Command(bin, "local", "--listen", addr, "--no-demo")
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "CUSTOMS_UPLOAD_URL=")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		waitHealthy(t, addr, exited, &out)
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("still running 60 s after Ctrl-C:\n%s", out.String())
		}
		if waitErr != nil || cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("exit after Ctrl-C: %v (status %d), want 0:\n%s", waitErr, cmd.ProcessState.ExitCode(), out.String())
		}
		if !strings.Contains(out.String(), "ceb179 local stopped.") {
			t.Errorf("no summary after Ctrl-C:\n%s", out.String())
		}
	})

	t.Run("fail the listen address is taken exits 1", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var stdout, stderr syncBuffer
		cmd := exec.Command(bin, "local", "--listen", ln.Addr().String(), "--no-demo")
		cmd.Dir = t.TempDir()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("still running with its address taken:\n%s%s", stdout.String(), stderr.String())
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("exit status %d with the address taken, want 1:\n%s%s", code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stderr.String(), ln.Addr().String()) {
			t.Errorf("stderr does not say which address failed: %q", stderr.String())
		}
	})
}
