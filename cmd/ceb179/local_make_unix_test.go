//go:build !windows

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeRunCtrlC runs `make run` as a terminal does, in a process group
// of its own, and presses Ctrl-C (SIGINT to the whole group): the stack
// stops with its summary and make reports no error. (Through `go run`,
// which exits 1 whenever it was interrupted, every stop ended in
// "make: *** [Makefile:…: run] Error 1".)
func TestMakeRunCtrlC(t *testing.T) {
	builtCommand(t) // skips as the other process tests do, and warms make's build
	makeTool, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not on PATH")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(makeTool, "--no-print-directory", "-C", root, "run",
		"CEB179_BIN="+filepath.Join(tmp, "ceb179"),
		"RUN_ARGS=--listen "+addr+" --no-demo --data "+filepath.Join(tmp, "data"))
	cmd.Env = append(os.Environ(), "CUSTOMS_UPLOAD_URL=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	output := outputOf(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	waitHealthy(t, addr, exited, output)

	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after Ctrl-C:\n%s", output())
	}
	if !strings.Contains(output(), "ceb179 local stopped.") {
		t.Errorf("no summary after Ctrl-C:\n%s", output())
	}
	if strings.Contains(output(), "make: ***") {
		t.Errorf("make reported an error after a clean Ctrl-C:\n%s", output())
	}
	// make itself dies of the SIGINT it was sent, as an interrupted make
	// does; an exit status of its own would be the recipe's failure.
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !(ws.Exited() && ws.ExitStatus() == 0) && !(ws.Signaled() && ws.Signal() == syscall.SIGINT) {
		t.Errorf("make ended with %v, want exit 0 or SIGINT:\n%s", cmd.ProcessState, output())
	}
}
