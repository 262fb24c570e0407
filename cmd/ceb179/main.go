// Command ceb179 is the command-line tool of ceb179: it signs, verifies and
// checks the payment data that a platform uploads to China Customs under
// announcement No.179, and hosts the operator subcommands.
//
// Run `ceb179 --help` for the list of subcommands and `ceb179 CMD --help`
// for each one. Exit codes: 0 success, 1 the command ran and the answer is
// no (signature does not verify, field rules broken, key refused), 2 usage
// error or input that cannot be read or parsed.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
