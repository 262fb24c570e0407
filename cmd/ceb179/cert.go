package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/signature"
)

var certCommand = command{
	name:    "cert",
	summary: "register or list the signing certificates of an ebpCode (upload verifies against them)",
	run:     runCert,
}

func runCert(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var (
		ebpCode string
		local   bool
		dataDir string
	)
	fs := newFlagSet("cert", "register|list --ebp-code CODE [--local [--data DIR]] [CERT.pem]", `
register stores CERT.pem (PEM, bare base64 or DER; "-" for stdin) in the
payments table as a certificate registered with customs for the ebpCode,
under its certNo (pk CERT#<ebpCode>, sk <certNo>). The upload function
refuses to send a signature that does not verify against a certificate
registered this way. It prints the certNo.

list prints the certificates registered for the ebpCode.

Without --local the table is PAYMENTS_TABLE and the endpoint the usual AWS
settings; with --local it is the running 'ceb179 local' stack's.`)
	fs.StringVar(&ebpCode, "ebp-code", "", "the platform's customs registration code (required)")
	fs.BoolVar(&local, "local", false, "use the running local stack (`ceb179 local`)")
	fs.StringVar(&dataDir, "data", devstack.DefaultDir, "data directory of the local stack (with --local)")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return fs.usageError(stderr, "want an action: register or list")
	}
	if ebpCode == "" {
		return fs.usageError(stderr, "--ebp-code is required")
	}
	action, rest := pos[0], pos[1:]
	switch action {
	case "register":
		if len(rest) != 1 {
			return fs.usageError(stderr, "register wants exactly one certificate file")
		}
		b, name, err := readInput(rest, stdin)
		if err != nil {
			return fail(stderr, fs.name, exitUsage, err)
		}
		cert, err := signature.ParseCertificatePEM(b)
		if err != nil {
			return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", name, err))
		}
		if _, err := signature.AlgorithmOf(cert.PublicKey); err != nil {
			return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", name, err))
		}
		store, _, err := paymentsStore(ctx, local, dataDir)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		c := ceb179.Certificate{EbpCode: ebpCode, CertNo: signature.CertNo(cert), PEM: b,
			NotAfter: cert.NotAfter, RegisteredAt: time.Now()}
		if err := store.PutCertificate(ctx, c); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		fmt.Fprintln(stdout, c.CertNo)
		return exitOK
	case "list":
		if len(rest) != 0 {
			return fs.usageError(stderr, "list takes no file")
		}
		store, _, err := paymentsStore(ctx, local, dataDir)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		certs, err := store.ListCertificates(ctx, ebpCode)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CERTNO\tNOT AFTER\tREGISTERED")
		for _, c := range certs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.CertNo, c.NotAfter.UTC().Format(time.DateOnly), c.RegisteredAt.UTC().Format(time.RFC3339))
		}
		tw.Flush()
		return exitOK
	}
	return fs.usageError(stderr, fmt.Sprintf("unknown action %q (want register or list)", action))
}
