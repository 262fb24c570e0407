package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ceb179/ceb179/internal/customs"
)

var signsourceCommand = command{
	name:    "signsource",
	summary: "print the exact sign source of a payExInfoStr",
	run:     runSignSource,
}

func runSignSource(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("signsource", "[FILE]", `
Reads a payExInfoStr as received (not URL-encoded) from FILE or stdin and
writes the bytes its signature covers, and nothing else (no trailing
newline):

  "sessionID":"<sid>"||"payExchangeInfoHead":"<head>"||"payExchangeInfoLists":"<lists>"||"serviceTime":"<t>"

The head and lists are copied byte for byte from the input.`)
	in, name, code, ok := fs.parseInput(args, stdin, stdout, stderr)
	if !ok {
		return code
	}
	r, err := customs.ReadPayExInfoStr(in)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", name, err))
	}
	if _, err := stdout.Write(r.SignSource()); err != nil {
		return fail(stderr, fs.name, exitFail, fmt.Errorf("write: %w", err))
	}
	return exitOK
}
