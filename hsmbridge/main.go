// Command hsmbridge is the on-prem signer daemon of ceb179: it long-polls
// the sign queue, has an E-Port card, a cipher machine or a key file sign
// each job, and hands the signature to the upload function. It opens no
// inbound port (the status endpoint listens on loopback only).
//
// Usage:
//
//	hsmbridge [-config file] [run]   run in the console, or as a service
//	hsmbridge [-config file] check   validate the config and probe each signer
//	hsmbridge [-config file] pin-reset [NAME]
//	                                 clear the PIN marker (refusal or strike) of
//	                                 signer NAME's card, after fixing its PIN
//	                                 file; without NAME, list the markers
//
// The configuration is described in docs/hsmbridge.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/signer"
)

// serviceName is the Windows service and systemd unit name.
const serviceName = "hsmbridge"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hsmbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (YAML); env HSMBRIDGE_CONFIG")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := "run"
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
	}
	cfg, err := bridge.LoadConfig(*cfgPath, os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "hsmbridge:", err)
		return 2
	}
	log, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "hsmbridge:", err)
		return 2
	}
	defer closeLog()

	switch cmd {
	case "check":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := bridge.Check(ctx, cfg, log, stdout); err != nil {
			fmt.Fprintln(stderr, "hsmbridge check:", err)
			return 1
		}
		fmt.Fprintln(stdout, "config OK; every signer made a verified test signature")
		return 0
	case "pin-reset":
		return pinReset(cfg, fs.Arg(1), stdout, stderr)
	case "run":
		start := func(ctx context.Context) error { return serve(ctx, cfg, log) }
		if handled, err := runService(serviceName, start); handled {
			if err != nil {
				log.Error("service failed", "err", err)
				return 1
			}
			return 0
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := start(ctx); err != nil {
			log.Error("hsmbridge failed", "err", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "hsmbridge: unknown command %q (want run, check or pin-reset)\n", cmd)
		return 2
	}
}

// pinReset removes the PIN markers (refusals and strikes) of the card that
// signer name (or the card with that identity) used. The PIN is sent again
// at the next start or check, so it is run only after the PIN file was
// fixed. Without a name it lists the markers.
func pinReset(cfg bridge.Config, name string, stdout, stderr io.Writer) int {
	guard, _, err := cfg.PINGuard()
	if err != nil {
		fmt.Fprintln(stderr, "hsmbridge: pin-reset:", err)
		return 1
	}
	if name == "" {
		listMarkers(guard, stdout)
		fmt.Fprintln(stderr, "hsmbridge: pin-reset needs the signer's name (or the card's identity)")
		return 2
	}
	cleared, err := guard.Reset(name)
	if err != nil {
		fmt.Fprintln(stderr, "hsmbridge: pin-reset:", err)
		return 1
	}
	if len(cleared) == 0 {
		fmt.Fprintf(stdout, "no PIN marker for %s\n", name)
		listMarkers(guard, stdout)
		return 1
	}
	for _, c := range cleared {
		fmt.Fprintf(stdout, "cleared the PIN marker of card %s; restart hsmbridge to use it again (the PIN is sent once more)\n", c)
	}
	return 0
}

// listMarkers prints the markers of the machine's state directory.
func listMarkers(guard *signer.PINGuard, w io.Writer) {
	rs, err := guard.Refusals()
	if err != nil {
		fmt.Fprintf(w, "PIN markers in %s: %v\n", guard.Dir(), err)
		return
	}
	fmt.Fprintf(w, "PIN markers in %s: %d\n", guard.Dir(), len(rs))
	for _, r := range rs {
		m := r.Last()
		fmt.Fprintf(w, "  card %s, signers %v: %s at %s\n", r.Card, r.Signers, m.Kind, m.At.Format("2006-01-02 15:04:05Z07:00"))
	}
}

// serve builds the AWS clients and the bridge once and runs it.
func serve(ctx context.Context, cfg bridge.Config, log *slog.Logger) error {
	clients, err := awsenv.Load(ctx, awsenv.WithRegion(cfg.Region))
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	specs, err := cfg.SignerSpecs(log)
	if err != nil {
		return err
	}
	o := cfg.Options()
	o.Queue = queue.New(clients.SQS, cfg.QueueURL)
	o.Uploader = &bridge.LambdaUploader{Client: clients.Lambda, Function: cfg.UploadFunction}
	o.Signers = specs
	o.Logger = log
	b, err := bridge.New(o)
	if err != nil {
		return err
	}
	if every, _ := cfg.HeartbeatInterval(); every > 0 {
		// The markers SignerSpecs opened: it failed above if they could
		// not be, so a guard is at hand whenever a signer sends a PIN.
		var guard *signer.PINGuard
		if cfg.SendsPINs() {
			if guard, _, err = cfg.PINGuard(); err != nil {
				return err
			}
		}
		hb := &bridge.Heartbeat{
			Sink:     &bridge.CloudWatchHeartbeat{Client: awsenv.NewCloudWatch(clients.Config)},
			Interval: every,
			Sample:   func() bridge.Beat { return bridge.BeatOf(b.Status(), guard, time.Now()) },
			Logger:   log,
		}
		go func() { _ = hb.Run(ctx) }()
	}
	return b.Run(ctx)
}

// newLogger returns the JSON logger the configuration asks for. The alarm
// level prints as "ALARM".
func newLogger(cfg bridge.Config, stderr io.Writer) (*slog.Logger, func(), error) {
	level, err := bridge.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	w, closer := stderr, func() {}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		w, closer = f, func() { f.Close() }
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey {
				if l, ok := a.Value.Any().(slog.Level); ok && l >= bridge.LevelAlarm {
					a.Value = slog.StringValue("ALARM")
				}
			}
			return a
		},
	})
	return slog.New(h).With("app", "hsmbridge"), closer, nil
}

// defaultConfigPath is HSMBRIDGE_CONFIG, or the platform's usual place.
func defaultConfigPath() string {
	if p := os.Getenv("HSMBRIDGE_CONFIG"); p != "" {
		return p
	}
	return platformConfigPath
}
