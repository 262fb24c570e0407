package main

import (
	"context"
	"errors"
	"io"
)

// serveStatus serves the status page until ctx ends.
func serveStatus(_ context.Context, _ *opsEnv, _, _ string, _, stderr io.Writer) int {
	return fail(stderr, "status", exitFail, errors.New("--serve: not available yet"))
}
