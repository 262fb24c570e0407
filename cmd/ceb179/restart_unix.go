//go:build !windows

package main

import (
	"context"
	"syscall"
)

// restart replaces this process with exe run with args and env, as the
// same process id (so a Ctrl-C or a service manager's signal reaches the
// new program). It returns only when that fails.
func restart(_ context.Context, exe string, args, env []string) (int, error) {
	return exitFail, syscall.Exec(exe, append([]string{exe}, args...), env)
}
