package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/signature"
)

var customsSimCommand = command{
	name:    "customs-sim",
	summary: "play customs: receive and check uploads, rehearse the business test",
	run:     runCustomsSim,
}

// certFlags collects repeated --cert EBPCODE=CERT.pem flags.
type certFlags []string

func (c *certFlags) String() string     { return strings.Join(*c, ",") }
func (c *certFlags) Set(v string) error { *c = append(*c, v); return nil }

func runCustomsSim(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var certs certFlags
	fs := newFlagSet("customs-sim", "--cert EBPCODE=CERT.pem [--listen ADDR] [--call URL --orders A,B,...] ", customsSimHelp)
	fs.Var(&certs, "cert", "a certificate registered for an ebpCode, as EBPCODE=CERT.pem (repeatable)")
	listen := fs.String("listen", "127.0.0.1:8090", "address to serve realTimeDataUpload on")
	jointTest := fs.Bool("joint-test", false, "behave like the joint-test endpoint: do not verify signatures")
	call := fs.String("call", "", "the platform's platDataOpen URL to rehearse the business test against")
	orders := fs.String("orders", "", "comma-separated orders to ask for (with --call)")
	ordersFile := fs.String("orders-file", "", "file with one order per line (with --call)")
	count := fs.Int("count", 0, "ask for this many orders picked at random from the list (0: all)")
	window := fs.Duration("window", customssim.DefaultWindow, "how long each upload may take")
	if _, code, ok := fs.parse(args, stdout, stderr); !ok {
		return code
	}

	var opts []customssim.Option
	opts = append(opts, customssim.WithLogger(slog.New(slog.NewJSONHandler(stderr, nil))))
	if *jointTest {
		opts = append(opts, customssim.WithoutSignatureCheck())
	}
	sim := customssim.New(opts...)
	if len(certs) == 0 && !*jointTest {
		return fs.usageError(stderr, "want at least one --cert EBPCODE=CERT.pem (or --joint-test)")
	}
	for _, c := range certs {
		if code := registerCert(fs, sim, c, stdout, stderr); code != exitOK {
			return code
		}
	}

	var list []string
	if *call != "" {
		var err error
		if list, err = orderList(*orders, *ordersFile); err != nil {
			return fs.usageError(stderr, err.Error())
		}
		if *count > 0 && *count < len(list) {
			rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
			list = list[:*count]
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(stdout, "customs simulator: http://%s%s\n", ln.Addr(), customssim.UploadPath)

	if *call == "" {
		<-ctx.Done()
		return exitOK
	}
	rep := sim.Rehearse(ctx, customssim.Rehearsal{PlatformURL: *call, Orders: list, Window: *window})
	if err := rep.WriteTable(stdout); err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if !rep.Passed() {
		return exitFail
	}
	return exitOK
}

// customsSimHelp is the help text of `ceb179 customs-sim`.
const customsSimHelp = `
Plays China Customs' 通关服务系统 for the 179 interface.

It serves realTimeDataUpload on --listen and checks every upload as
production does: the signature against the certificate registered for the
upload's ebpCode, the certNo, every field rule, and re-used sessionIDs. It
answers like customs (10000 上传成功 / 20000 with customs-style messages).
Point a platform's CUSTOMS_UPLOAD_URL at the printed address.

With --call it also rehearses customs' business test: it calls the
platform's platDataOpen URL for each order (or --count random ones of them),
waits up to --window for each upload, prints one line per request (ack code
and latency, time to upload, on time, signature valid, field problems) and
exits 0 when every request passed, 1 when any failed.`

// registerCert registers the certificate of one --cert EBPCODE=CERT.pem
// with the simulator, and returns exitOK or the exit code of the failure.
func registerCert(fs *flagSet, sim *customssim.Sim, c string, stdout, stderr io.Writer) int {
	ebp, file, ok := strings.Cut(c, "=")
	if !ok || ebp == "" || file == "" {
		return fs.usageError(stderr, fmt.Sprintf("--cert %q: want EBPCODE=CERT.pem", c))
	}
	b, err := readFileLimited(file)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	cert, err := signature.ParseCertificatePEM(b)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", file, err))
	}
	sim.Register(ebp, cert)
	fmt.Fprintf(stdout, "registered certNo %s for ebpCode %s\n", signature.CertNo(cert), ebp)
	return exitOK
}

// orderList reads the orders of a rehearsal from a comma-separated list or
// a file with one order per line.
func orderList(csv, file string) ([]string, error) {
	var raw []string
	if csv != "" {
		raw = strings.Split(csv, ",")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		raw = append(raw, strings.Split(string(b), "\n")...)
	}
	var list []string
	for _, o := range raw {
		if o = strings.TrimSpace(o); o != "" {
			list = append(list, o)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("--call needs orders: --orders A,B,... or --orders-file FILE")
	}
	return list, nil
}
