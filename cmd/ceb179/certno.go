package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ceb179/ceb179/internal/signature"
)

var certnoCommand = command{
	name:    "certno",
	summary: "print the certNo (serial number in lower-case hex) of a certificate",
	run:     runCertNo,
}

func runCertNo(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("certno", "CERT.pem", `
Prints the certNo that customs expects next to a signature made with the
certificate's key: the serial number's bytes in lower-case hex. CERT.pem may
be PEM, bare base64 or DER; "-" reads it from stdin.`)
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return fs.usageError(stderr, "want exactly one certificate file")
	}
	b, _, err := readInput(pos, stdin)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	cert, err := signature.ParseCertificatePEM(b)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", pos[0], err))
	}
	fmt.Fprintln(stdout, signature.CertNo(cert))
	return exitOK
}
