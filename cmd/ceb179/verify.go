package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/signature"
)

var verifyCommand = command{
	name:    "verify",
	summary: "verify the signValue and certNo of a payExInfoStr against a certificate",
	run:     runVerify,
}

func runVerify(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", "--cert CERT.pem [FILE]", `
Reads a payExInfoStr as received (not URL-encoded) from FILE or stdin and
checks it as customs would: signValue must be a valid signature of the sign
source under CERT.pem's key (SM2/SM3 or RSA/SHA-1, by the key type), and
certNo must be CERT.pem's serial number in lower-case hex.

Exit 0 when both hold, 1 when not (reasons on stderr), 2 when the input or
the certificate cannot be read or parsed.`)
	certPath := fs.String("cert", "", "certificate `file` the payload must be signed with")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case *certPath == "":
		return fs.usageError(stderr, "--cert is required")
	case len(pos) > 1:
		return fs.usageError(stderr, "at most one input file")
	}
	cert, err := loadCertificate(*certPath)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	in, name, err := readInput(pos, stdin)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	r, err := customs.ReadPayExInfoStr(in)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", name, err))
	}

	code = exitOK
	certNo := signature.CertNo(cert)
	if r.CertNo != certNo {
		code = fail(stderr, fs.name, exitFail, fmt.Errorf("certNo %q does not match the certificate (%s)", r.CertNo, certNo))
	}
	if err := signature.Verify(cert, r.SignSource(), r.SignValue); err != nil {
		code = fail(stderr, fs.name, exitFail, err)
	}
	if code == exitOK {
		alg, _ := signature.AlgorithmOf(cert.PublicKey)
		fmt.Fprintf(stdout, "ok: %s signature by certNo %s\n", alg, certNo)
	}
	return code
}
