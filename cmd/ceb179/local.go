package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/dev/emulator"
	"github.com/ceb179/ceb179/internal/notify"
)

var localCommand = command{
	name:    "local",
	summary: "run the whole pipeline on this machine: emulated AWS, bridge, customs simulator",
	run:     runLocal,
}

// envPersist names the variable through which `ceb179 local --data DIR`
// hands the emulator's state directory to itself: the emulator reads it
// once, when the process starts.
const envPersist = emulator.EnvPersist

// localAbout is the help text of `ceb179 local`.
const localAbout = `
Runs ceb179 on this machine with no AWS account and nothing installed: an
embedded AWS emulator with the tables and queues of template.yaml, the
ingest handler on --listen (POST /platDataOpen, GET /healthz), assemble and
upload fed like Lambda's event source mapping, hsmbridge with a key-file
signer, and the customs simulator as customs' realTimeDataUpload.

On first run it makes a development SM2 key and self-signed certificate in
the data folder and registers it for the demo ebpCode; demo payment records
are seeded unless --no-demo. Each request's journey is printed as it
happens, and a summary when it stops (Ctrl-C). POST /payments and POST
/orders (the payments API, without IAM: loopback callers only) are served
on --listen too; the settler counts declared orders still without a
payment record after --missing-grace and the journey shows its alarm.

--bridge-config signs with the signers of an hsmbridge configuration file
(E-Port card, PKCS#11 cipher machine, key file, KMS) through the same code
as 'hsmbridge run': scheduling, health checks, PIN safety and the status
endpoint. The file's queue and upload settings are replaced by the local
stack's; its signers, timeouts and scheduling options are used as written.
Each signer's certificate is read from the card or the certificate file
and registered for its ebpCode, and the demo records are seeded for the
first signer's ebpCode (or --ebp-code). A PIN blocked on a card (refused,
or struck: sent without a usable answer) is remembered in the machine's
state directory, the same one 'hsmbridge run', 'check' and 'pin-reset'
use wherever their configuration file is (stateDir or HSMBRIDGE_STATE_DIR
override it).

--notify-config FILE raises template.yaml's alarms on this machine and
posts them to the group robots of FILE (the format of the NotifySecretArn
secret, docs/operations.md) through the notify function's code: the
alarms are evaluated every 10 s over the metrics the local functions and
hsmbridge emit, and each change goes through the notify queue.

--data DIR keeps the emulator's tables and queues (DIR/aws), the
development key pair and the log across restarts, for development and
rehearsals: in AWS, durability is DynamoDB's and SQS's. A graceful stop
(Ctrl-C, SIGTERM) loses nothing. A crash, kill -9 or power loss may lose
the last second or so, as the emulator writes its state about once a
second (and without fsync): a request answered 10000 but not yet written
is gone, never uploaded; an upload posted but not yet recorded is posted
again after the restart, which customs answers 入库失败: the session is
then recorded REJECTED although customs holds the data (or ACCEPTED, as
our own duplicate, when the first post's record survived). The emulator
keeps no message in flight across a restart, so each start with --data
queues again the work of every request not final.

Environment: CUSTOMS_UPLOAD_URL sends uploads there instead of to the
built-in simulator (https with verified TLS, or http on loopback);
CUSTOMS_CA_FILE adds CAs (PEM) to trust for it. With customs' joint-test
endpoint and --bridge-config this is the joint test from one PC; that
endpoint does not verify signatures, 'ceb179 customs-sim' does.`

func runLocal(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("local", "[--listen ADDR] [--data DIR] [--signer-key KEY.pem --signer-cert CERT.pem | --bridge-config FILE] [--ebp-code CODE] [--no-demo] [--missing-grace D] [--notify-config FILE]", localAbout)
	listen := fs.String("listen", devstack.DefaultListen, "address to serve platDataOpen and /healthz on")
	dataDir := fs.String("data", "", "keep the emulator's state in DIR across restarts; a crash may lose the last second (default: the development key pair in "+devstack.DefaultDir+", state in memory)")
	key := fs.String("signer-key", "", "sign with this key file (PEM) instead of the development key")
	cert := fs.String("signer-cert", "", "the certificate of --signer-key")
	ebp := fs.String("ebp-code", devstack.DemoEbpCode, "the ebpCode the signing certificate is registered for")
	noDemo := fs.Bool("no-demo", false, "do not seed demo payment records")
	missingGrace := fs.Duration("missing-grace", 0, "how long a declared order may wait for its payment record (default 1h)")
	bridgeFile := fs.String("bridge-config", "", "sign with the signers of this hsmbridge configuration file (YAML)")
	notifyFile := fs.String("notify-config", "", "raise template.yaml's alarms locally and post them to the group robots of this file (JSON or YAML)")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return fs.usageError(stderr, "unexpected argument "+pos[0])
	}
	if (*key == "") != (*cert == "") {
		return fs.usageError(stderr, "--signer-key and --signer-cert go together")
	}
	var bridgeCfg *bridge.Config
	if *bridgeFile != "" {
		if *key != "" {
			return fs.usageError(stderr, "--bridge-config brings its own signers: drop --signer-key and --signer-cert")
		}
		c, err := devstack.LoadBridgeConfig(*bridgeFile)
		if err != nil {
			return fail(stderr, fs.name, exitUsage, err)
		}
		bridgeCfg = c
		if !fs.isSet("ebp-code") {
			*ebp = ""
		}
	}

	var notifyCfg []byte
	if *notifyFile != "" {
		b, err := os.ReadFile(*notifyFile)
		if err != nil {
			return fail(stderr, fs.name, exitUsage, err)
		}
		if _, err := notify.ParseConfig(b); err != nil {
			return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", *notifyFile, err))
		}
		notifyCfg = b
	}

	dir := *dataDir
	if dir != "" {
		abs, err := filepath.Abs(filepath.Join(dir, "aws"))
		if err != nil {
			return fail(stderr, fs.name, exitUsage, err)
		}
		if os.Getenv(envPersist) != abs {
			// The emulator reads its state directory when the process
			// starts: start again with it set.
			if err := os.MkdirAll(abs, 0o700); err != nil {
				return fail(stderr, fs.name, exitFail, err)
			}
			exe, err := os.Executable()
			if err != nil {
				return fail(stderr, fs.name, exitFail, err)
			}
			code, err := restart(ctx, exe, os.Args[1:], append(os.Environ(), envPersist+"="+abs))
			if err != nil {
				return fail(stderr, fs.name, exitFail, err)
			}
			return code
		}
	} else if os.Getenv(envPersist) != "" {
		return fs.usageError(stderr, envPersist+" is set: use --data DIR to keep state")
	}

	fmt.Fprintln(stdout, "ceb179 local: starting the emulated AWS stack from template.yaml ...")
	stack, err := devstack.Start(ctx, devstack.Options{
		Listen:           *listen,
		DataDir:          dir,
		SignerKey:        *key,
		SignerCert:       *cert,
		EbpCode:          *ebp,
		BridgeConfig:     bridgeCfg,
		NoDemo:           *noDemo,
		MissingGrace:     *missingGrace,
		KeptState:        dir != "",
		CustomsUploadURL: os.Getenv("CUSTOMS_UPLOAD_URL"),
		CustomsCAFile:    os.Getenv(config.EnvCustomsCAFile),
		Journey:          stdout,
		Log:              logFile(dir, stderr),
		Notify:           notifyCfg,
	})
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	printReady(stdout, stack, *bridgeFile)

	if err := runUntilStopped(ctx, stack, dir != "", stdout); err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	return exitOK
}

// runUntilStopped waits until ctx ends or the stack fails, stops the
// stack and prints its summary. persisted gives the emulator's background
// snapshot a moment to reach disk.
func runUntilStopped(ctx context.Context, stack *devstack.Stack, persisted bool, stdout io.Writer) error {
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-stack.Err():
	}
	_ = stack.Close()
	if persisted {
		time.Sleep(1500 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "\nceb179 local stopped.\n%s", stack.Summary())
	return runErr
}

// printReady prints where the running stack listens, its signers (those of
// the hsmbridge configuration bridgeFile, when set) and the demo orders.
func printReady(stdout io.Writer, stack *devstack.Stack, bridgeFile string) {
	fmt.Fprintf(stdout, `
  platDataOpen   %s/platDataOpen
  health         %s/healthz
  status page    %s/status
  payments API   POST %s/payments, POST %s/orders (loopback only)
  customs        %s
`, stack.URL, stack.URL, stack.URL, stack.URL, stack.URL, stack.CustomsUploadURL)
	if stack.CustomsUploadURL == customs.TestUploadURL {
		fmt.Fprintln(stdout, "                 customs' joint-test endpoint: a 10000 there does not mean the signature verified")
	}
	if bridgeFile == "" {
		fmt.Fprintf(stdout, "  signer         certNo %s registered for ebpCode %s\n", stack.CertNo, stack.EbpCode)
	} else {
		writeSigners(stdout, bridgeFile, stack)
	}
	fmt.Fprintf(stdout, "  AWS emulator   %s\n", stack.Endpoint)
	if stack.NotifySecretARN != "" {
		fmt.Fprintf(stdout, "  alarms         %d of template.yaml's evaluated here, to the robots of --notify-config ('ceb179 notify test --local');\n", len(stack.Alarms))
		fmt.Fprintf(stdout, "                 not evaluated (no local data): %s\n", strings.Join(stack.AlarmsSkipped, ", "))
	}
	if stack.Requeued > 0 {
		fmt.Fprintf(stdout, "  resumed        %d requests not final queued again (the emulator forgets messages in flight)\n", stack.Requeued)
	}
	if len(stack.DemoOrders) > 0 {
		fmt.Fprintf(stdout, "  demo orders    %v\n\nTry:\n  %s\n", stack.DemoOrders,
			tryCurl(runtime.GOOS, stack.URL, stack.DemoOrders[0], fmt.Sprintf("demo-%d", time.Now().Unix()), time.Now().UnixMilli()))
	}
	fmt.Fprintln(stdout, "\nReady. Ctrl-C stops.")
}

// tryCurl returns a curl command that asks for orderNo as customs does, in
// the quoting of the usual shell of goos: a POSIX shell, or cmd.exe on
// Windows (curl.exe ships with Windows 10 and later).
func tryCurl(goos, base, orderNo, sessionID string, serviceTime int64) string {
	open := fmt.Sprintf(`{"orderNo":%q,"sessionID":%q,"serviceTime":%d}`, orderNo, sessionID, serviceTime)
	if goos == "windows" {
		return fmt.Sprintf(`curl.exe -s %s/platDataOpen --data-urlencode "openReq=%s"`, base, strings.ReplaceAll(open, `"`, `\"`))
	}
	return fmt.Sprintf(`curl -s %s/platDataOpen --data-urlencode 'openReq=%s'`, base, open)
}

// writeSigners prints the signers of a bridge configuration, each with the
// certificate registered for its ebpCode, or why it is not open yet.
func writeSigners(w io.Writer, file string, stack *devstack.Stack) {
	fmt.Fprintf(w, "  signers        from %s (hsmbridge)\n", file)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, si := range stack.Signers {
		if si.Err != "" {
			fmt.Fprintf(tw, "    %s\t%s\tebpCode %s\tnot open: %s\t\n", si.Name, si.Type, si.EbpCode, si.Err)
			continue
		}
		fmt.Fprintf(tw, "    %s\t%s\tebpCode %s\tcertNo %s\t%s\tvalid until %s\n",
			si.Name, si.Type, si.EbpCode, si.CertNo, si.KeyType, si.NotAfter.Format(time.DateOnly))
	}
	_ = tw.Flush()
	if stack.BridgeStatusURL != "" {
		fmt.Fprintf(w, "  hsmbridge      %s\n", stack.BridgeStatusURL)
	}
	if stack.PINMarkers != "" {
		fmt.Fprintf(w, "  PIN markers    %s (this machine's, shared with hsmbridge run and check)\n", stack.PINMarkers)
	}
}

// isSet reports whether the flag name was given on the command line.
func (f *flagSet) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// logFile returns where the components' JSON logs go: DIR/ceb179-local.log,
// or stderr when it cannot be opened.
func logFile(dir string, stderr io.Writer) io.Writer {
	if dir == "" {
		dir = devstack.DefaultDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return stderr
	}
	f, err := os.OpenFile(filepath.Join(dir, "ceb179-local.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return stderr
	}
	return f
}
