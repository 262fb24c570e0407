package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLocalCommand runs the README's run command as a process: `ceb179
// local` comes up, answers /healthz, turns a customs request into an
// accepted upload, starts again on the data folder it wrote, and stops
// cleanly on Ctrl-C with a summary.
func TestLocalCommand(t *testing.T) {
	bin := builtCommand(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	for run, order := range []string{"DEMO-ORDER-1", "DEMO-ORDER-2B"} {
		addr := freeAddr(t)
		cmd := exec.Command(bin, "local", "--listen", addr, "--data", data)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CUSTOMS_UPLOAD_URL=")
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var (
			mu  sync.Mutex
			out strings.Builder
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				mu.Lock()
				out.WriteString(sc.Text() + "\n")
				mu.Unlock()
			}
		}()
		output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("run %d: no %s; output:\n%s", run, what, output())
				}
			}
		}
		waitFor("healthz", func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		resp, err := http.PostForm("http://"+addr+"/platDataOpen", url.Values{"openReq": {`{"orderNo":"` + order + `","sessionID":"local-test-` + order + `","serviceTime":1700000000000}`}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"code":"10000"`) {
			t.Fatalf("ack %s", body)
		}
		waitFor("accepted upload", func() bool { return strings.Contains(output(), "accepted by customs") })

		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		<-done
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d: exit: %v\n%s", run, err, output())
		}
		for _, want := range []string{"platDataOpen   http://" + addr, "ceb179 local stopped.", "ACCEPTED  1", "accepted on time: 1"} {
			if !strings.Contains(output(), want) {
				t.Errorf("run %d: output lacks %q:\n%s", run, want, output())
			}
		}
	}
	// The second run found the state and the development key of the first.
	for _, f := range []string{"dev-signer.key", "dev-signer.crt", "aws/dynamodb.json"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("data folder: %v", err)
		}
	}
}

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
			builtErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtBin
}

// outputOf sends cmd's stdout and stderr to a file of the test's and
// returns a function that reads what they wrote so far.
func outputOf(t *testing.T, cmd *exec.Cmd) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "output")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout, cmd.Stderr = f, f
	return func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

// waitHealthy waits until addr answers /healthz; it fails the test when
// the process ends first or is not up in 90 s.
func waitHealthy(t *testing.T, addr string, exited <-chan struct{}, output func() string) {
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
			t.Fatalf("ended before it was up:\n%s", output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not up after 90 s:\n%s", output())
		}
	}
}

// TestLocalExitStatus runs `ceb179 local` as a process: after a clean
// start, Ctrl-C (SIGINT) stops it with a summary and exit status 0; a
// stack that cannot start exits 1. (TestLocalCommand stops a stack on a
// data folder, which runs as a second program, the same way.)
func TestLocalExitStatus(t *testing.T) {
	bin := builtCommand(t)
	tests := []struct {
		name     string
		taken    bool // the listen address is in use
		wantCode int
		want     string
	}{
		{"ok Ctrl-C after a clean start exits 0", false, 0, "ceb179 local stopped."},
		{"fail the listen address is taken exits 1", true, 1, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			if tt.taken {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			cmd := exec.Command(bin, "local", "--listen", addr, "--no-demo")
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "CUSTOMS_UPLOAD_URL=")
			output := outputOf(t, cmd)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			if !tt.taken {
				waitHealthy(t, addr, exited, output)
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-exited:
			case <-time.After(90 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("still running after 90 s:\n%s", output())
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.wantCode {
				t.Errorf("exit status %d, want %d:\n%s", code, tt.wantCode, output())
			}
			if !strings.Contains(output(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, output())
			}
		})
	}
}
