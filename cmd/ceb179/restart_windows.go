//go:build windows

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
)

// restart runs exe with args and env in this console and returns its exit
// code: Windows cannot replace a running process. Ctrl-C reaches both
// processes; this one has it caught (ctx) and waits for the child, which
// stops cleanly and prints its summary.
func restart(_ context.Context, exe string, args, env []string) (int, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return exitFail, err
	}
	return exitOK, nil
}
