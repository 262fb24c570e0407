package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/secret"
)

var notifyCommand = command{
	name:    "notify",
	summary: "send a test message through the group robots (DingTalk, Feishu/Lark, WeCom) and print their answers",
	run:     runNotify,
}

// fileSource is a robot configuration read from a file.
type fileSource string

func (f fileSource) Read(context.Context) ([]byte, error) { return os.ReadFile(string(f)) }

func runNotify(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var (
		local            bool
		dataDir, cfgFile string
		secretARN        string
	)
	fs := newFlagSet("notify", "test [--local [--data DIR] | --secret ARN | --config FILE]", `
test posts a test message to every robot of the configuration, as the
notify function posts alarm changes (signed, in each robot's format), and
prints each robot's answer. It exits 0 when every robot accepted it.

The configuration is the secret the notify function reads: --secret ARN
(default NOTIFY_SECRET_ARN, read with the usual AWS settings), the running
'ceb179 local' stack's with --local (its --notify-config), or a file with
--config. Its format is in docs/operations.md (group robots).`)
	fs.BoolVar(&local, "local", false, "use the robots of the running local stack (`ceb179 local --notify-config`)")
	fs.StringVar(&dataDir, "data", devstack.DefaultDir, "data directory of the local stack (with --local)")
	fs.StringVar(&cfgFile, "config", "", "read the robots from this file (JSON or YAML)")
	fs.StringVar(&secretARN, "secret", "", "read the robots from this Secrets Manager secret or SSM SecureString (default "+config.EnvNotifySecretARN+")")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 || pos[0] != "test" {
		return fs.usageError(stderr, "want the action test")
	}
	if local && (cfgFile != "" || secretARN != "") || cfgFile != "" && secretARN != "" {
		return fs.usageError(stderr, "choose one of --local, --secret and --config")
	}
	var src notify.ConfigSource
	switch {
	case cfgFile != "":
		src = fileSource(cfgFile)
	case local:
		st, err := devstack.ReadState(dataDir)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		if st.NotifySecretARN == "" {
			return fail(stderr, fs.name, exitFail, errors.New("the local stack has no robots: start it with --notify-config FILE"))
		}
		clients, err := awsenv.Load(ctx, awsenv.WithEmulatorAt(st.Region, st.Endpoint))
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		if src, err = secret.New(awsenv.NewSecretsManager(clients.Config), awsenv.NewSSM(clients.Config), st.NotifySecretARN, 0); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
	default:
		if secretARN == "" {
			nc, err := config.NotifyFromEnv(nil)
			if err != nil {
				return fail(stderr, fs.name, exitUsage, err)
			}
			secretARN = nc.SecretARN
		}
		if secretARN == "" {
			return fs.usageError(stderr, "no robots: give --secret ARN, --config FILE or --local, or set "+config.EnvNotifySecretARN)
		}
		clients, err := awsenv.Load(ctx)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		if src, err = secret.New(awsenv.NewSecretsManager(clients.Config), awsenv.NewSSM(clients.Config), secretARN, 0); err != nil {
			return fail(stderr, fs.name, exitUsage, err)
		}
	}
	results, err := notify.New(src, notify.WithSingleAttempt()).Test(ctx)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if len(results) == 0 {
		fmt.Fprintln(stdout, "no robots configured")
		return exitFail
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "robot\ttype\tresult\tanswer")
	failed := 0
	for _, r := range results {
		result, answer := "ok", ""
		if r.Err != nil {
			result = "FAILED"
			failed++
		}
		if n := len(r.Answers); n > 0 {
			answer = fmt.Sprintf("HTTP %d %s", r.Answers[n-1].Status, r.Answers[n-1].Body)
		} else if r.Err != nil {
			answer = r.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Robot, r.Kind, result, answer)
	}
	_ = tw.Flush()
	if failed > 0 {
		return exitFail
	}
	return exitOK
}
