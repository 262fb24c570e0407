package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/emmansun/gmsm/smx509"
)

var signCommand = command{
	name:    "sign",
	summary: "sign a payment document with a key file and print the payExInfoStr",
	run:     runSign,
}

func runSign(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign", "--key KEY.pem --cert CERT.pem [FILE]", `
Reads a document with sessionID, payExchangeInfoHead, payExchangeInfoLists
and serviceTime (any key order, white space or JSON escaping; certNo and
signValue, if present, are ignored) from FILE or stdin, checks the field
rules, writes the head and lists in canonical form, signs the sign source
with KEY.pem and prints the payExInfoStr with certNo and signValue filled
in, exactly, without a trailing newline.

The algorithm follows the key: SM2 with SM3 (user id 1234567812345678,
signValue = base64 of raw r||s) or RSA PKCS#1 v1.5 with SHA-1. The key must
belong to CERT.pem, the certificate registered with customs; otherwise
nothing is signed and the exit code is 1.`)
	keyPath := fs.String("key", "", "private key `file` (PEM: PKCS#8, PKCS#1 RSA or SEC 1 SM2; not encrypted)")
	certPath := fs.String("cert", "", "certificate `file` whose certNo goes into the output")
	noCheck := fs.Bool("no-check", false, "sign even when field rules are broken (for test data only)")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case *keyPath == "":
		return fs.usageError(stderr, "--key is required")
	case *certPath == "":
		return fs.usageError(stderr, "--cert is required")
	case len(pos) > 1:
		return fs.usageError(stderr, "at most one input file")
	}

	cert, err := loadCertificate(*certPath)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	keyPEM, err := readFileLimited(*keyPath)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	key, err := signature.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", *keyPath, err))
	}
	if err := signature.MatchesKey(cert, key); err != nil {
		return fail(stderr, fs.name, exitFail, fmt.Errorf("refusing to sign: %w", err))
	}

	in, name, err := readInput(pos, stdin)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	doc, err := customs.ReadDocument(in)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", name, err))
	}
	if !*noCheck {
		if n := reportViolations(stderr, fs.name, doc); n > 0 {
			return fail(stderr, fs.name, exitFail, fmt.Errorf("refusing to sign: %d field rule(s) broken (see above)", n))
		}
	}
	unsigned, err := doc.Canonical()
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	signValue, err := signature.Sign(key, unsigned.SignSource())
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if _, err := stdout.Write(unsigned.PayExInfoStr(signature.CertNo(cert), signValue)); err != nil {
		return fail(stderr, fs.name, exitFail, fmt.Errorf("write: %w", err))
	}
	return exitOK
}

// loadCertificate reads and parses a certificate file.
func loadCertificate(path string) (*smx509.Certificate, error) {
	b, err := readFileLimited(path)
	if err != nil {
		return nil, err
	}
	cert, err := signature.ParseCertificatePEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}
