package main

import (
	"bufio"
	"io"
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
