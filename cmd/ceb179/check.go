package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ceb179/ceb179/internal/customs"
)

var checkCommand = command{
	name:    "check",
	summary: "check the field rules of a payment document or payExInfoStr",
	run:     runCheck,
}

func runCheck(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "[FILE]", `
Reads a document to sign or a signed payExInfoStr from FILE or stdin and
applies the customs field rules (lengths, required fields, codes, amount,
tradingTime, sessionID, serviceTime, ...). Exit 0 when every rule holds; otherwise exit 1 with one
line per violation on stdout, "PATH: problem", for example
"payExchangeInfoHead.tradingTime: ...". Exit 2 when the input cannot be
read or parsed.`)
	in, name, code, ok := fs.parseInput(args, stdin, stdout, stderr)
	if !ok {
		return code
	}
	doc, err := customs.ReadDocument(in)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", name, err))
	}
	if n := reportViolations(stdout, "", doc); n > 0 {
		return fail(stderr, fs.name, exitFail, fmt.Errorf("%s: %d field rule(s) broken", name, n))
	}
	return exitOK
}

// reportViolations applies the field rules to doc (customs.Validate plus
// the sessionID and serviceTime rules) and writes one line "PATH: problem"
// per violation to w, each prefixed with "ceb179: NAME: " when name is not
// empty. It returns the number of violations.
func reportViolations(w io.Writer, name string, doc *customs.Document) int {
	prefix := ""
	if name != "" {
		prefix = "ceb179: " + name + ": "
	}
	err := doc.Validate()
	if err == nil {
		return 0
	}
	var verr *customs.ValidationError
	if !errors.As(err, &verr) || len(verr.Violations) == 0 {
		fmt.Fprintf(w, "%s%v\n", prefix, err)
		return 1
	}
	for _, v := range verr.Violations {
		fmt.Fprintf(w, "%s%s: %s\n", prefix, v.Path, v.Message)
	}
	return len(verr.Violations)
}
