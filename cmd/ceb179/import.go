package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

var importCommand = command{
	name:    "import",
	summary: "import payment records from a JSON Lines file (bulk import, backfill)",
	run:     runImport,
}

// importSettings are the flags of `ceb179 import`.
type importSettings struct {
	local    bool
	dataDir  string
	refused  string
	batch    int
	workers  int
	progress string
}

// importAbout is the help text of `ceb179 import`.
const importAbout = `
Imports payment records into the payments table from FILE, JSON Lines: one
payment per line, the payExchangeInfoHead fields except guid
(initalRequest, initalResponse, ebpCode, payCode, payTransactionId,
totalAmount as a JSON number, currency, verDept, payType, tradingTime,
note) plus payExchangeInfoLists exactly as customs receives it.

Every line is validated with the customs field rules; refused lines are
written with their line number and reasons to the refusals file, and the
rest is imported in batches, each payment atomically. Payments already
stored count as duplicates, so an interrupted import can be run again.

Without --local the table is PAYMENTS_TABLE and the endpoint the usual AWS
settings (AWS_ENDPOINT_URL, AWS_REGION, credentials); RETENTION_DAYS sets
the retention (default and minimum: see docs). With --local the endpoint
and table are those a running 'ceb179 local' publishes in DIR/stack.json.

Exit 0 when every line was imported or was a duplicate; 1 when lines were
refused or the store failed; 2 on usage errors or an unreadable file.`

func runImport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var s importSettings
	fs := newFlagSet("import", "[--local [--data DIR]] [--refused FILE] FILE", importAbout)
	fs.BoolVar(&s.local, "local", false, "import into the running local stack (`ceb179 local`)")
	fs.StringVar(&s.dataDir, "data", devstack.DefaultDir, "data directory of the local stack (with --local)")
	fs.StringVar(&s.refused, "refused", "", "file for refused lines, JSON Lines (default FILE.refused.jsonl)")
	fs.IntVar(&s.batch, "batch", 100, "payments per batch")
	fs.IntVar(&s.workers, "workers", 4, "batches written at once")
	fs.StringVar(&s.progress, "progress", "auto", "progress bar on stderr: auto (when a terminal), on, off")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if msg := s.check(pos); msg != "" {
		return fs.usageError(stderr, msg)
	}
	path := pos[0]
	if s.refused == "" {
		s.refused = path + ".refused.jsonl"
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	store, where, err := paymentsStore(ctx, s.local, s.dataDir)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	refusals, err := createRefusals(s.refused)
	if err != nil {
		return fail(stderr, fs.name, exitFail, fmt.Errorf("refusals file: %w", err))
	}
	opts := records.ImportOptions{BatchSize: s.batch, Workers: s.workers, Refused: refusals.add}
	bar := importBar(s.progress, filepath.Base(path), info.Size(), stderr)
	if bar != nil {
		opts.Progress = func(n int64) { _ = bar.Set64(n) }
	}

	start := time.Now()
	sum, ierr := records.Import(ctx, f, store, opts)
	elapsed := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	note, werr := refusals.close(sum.Refused == 0)
	rate := float64(sum.Imported+sum.Duplicates) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(stdout, "%s: %d lines: imported %d, skipped as duplicate %d, refused %d%s, failed %d; %.1fs, %.0f payments/s into %s\n",
		path, sum.Lines, sum.Imported, sum.Duplicates, sum.Refused, note, sum.Failed, elapsed.Seconds(), rate, where)
	switch {
	case ierr != nil:
		return fail(stderr, fs.name, exitFail, fmt.Errorf("stopped: %w (run the import again to continue)", ierr))
	case werr != nil:
		return fail(stderr, fs.name, exitFail, fmt.Errorf("refusals file: %w", werr))
	case sum.Refused > 0 || sum.Failed > 0:
		return exitFail
	}
	return exitOK
}

// check returns what is wrong with the settings and the positional
// arguments pos, or "" when nothing is.
func (s importSettings) check(pos []string) string {
	switch {
	case len(pos) != 1:
		return "exactly one input FILE"
	case s.batch < 1 || s.batch > 1000 || s.workers < 1 || s.workers > 64:
		return "--batch must be 1..1000 and --workers 1..64"
	case s.progress != "auto" && s.progress != "on" && s.progress != "off":
		return "--progress must be auto, on or off"
	}
	return ""
}

// refusals is the file the refused lines of an import go to, one JSON
// object per line. Import calls add one line at a time.
type refusals struct {
	path string
	f    *os.File
	enc  *json.Encoder
	err  error
}

// createRefusals creates (or empties) the refusals file at path.
func createRefusals(path string) (*refusals, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	return &refusals{path: path, f: f, enc: enc}, nil
}

// add writes one refused line; the first write error is kept for close.
func (r *refusals) add(f records.Refusal) {
	if err := r.enc.Encode(f); err != nil && r.err == nil {
		r.err = err
	}
}

// close closes the file and removes it when none were refused and all went
// well; otherwise it returns a note naming the file, for the summary. err
// is the first write or close error.
func (r *refusals) close(none bool) (note string, err error) {
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	if none && r.err == nil {
		os.Remove(r.path)
		return "", nil
	}
	return " (reasons in " + r.path + ")", r.err
}

// importBar returns the progress bar over size bytes of the input named
// name when mode asks for one (see showProgress), or nil.
func importBar(mode, name string, size int64, stderr io.Writer) *progressbar.ProgressBar {
	if !showProgress(mode, stderr) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("importing "+name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }),
	)
}

// showProgress decides whether to draw the progress bar.
func showProgress(mode string, stderr io.Writer) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	f, ok := stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// paymentsStore opens the payments table: the local stack's with local,
// otherwise PAYMENTS_TABLE at the environment's AWS endpoint. It also names
// the table and where it is, for the output.
func paymentsStore(ctx context.Context, local bool, dataDir string) (*dynamo.Store, string, error) {
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return nil, "", err
	}
	if local {
		st, err := devstack.ReadState(dataDir)
		if err != nil {
			return nil, "", err
		}
		if st.Tables.Payments == "" {
			return nil, "", fmt.Errorf("%s: no payments table published", devstack.StatePath(dataDir))
		}
		clients, err := awsenv.Load(ctx, awsenv.WithEmulatorAt(st.Region, st.Endpoint))
		if err != nil {
			return nil, "", err
		}
		return dynamo.New(clients.DynamoDB, dynamo.Tables{Payments: st.Tables.Payments}, cfg.Retention), st.Tables.Payments + " (local)", nil
	}
	if cfg.PaymentsTable == "" {
		return nil, "", errors.New("PAYMENTS_TABLE is not set (or use --local)")
	}
	clients, err := awsenv.Load(ctx)
	if err != nil {
		return nil, "", err
	}
	where := cfg.PaymentsTable
	if ep := aws.ToString(clients.Config.BaseEndpoint); ep != "" {
		where += " at " + ep
	}
	return dynamo.New(clients.DynamoDB, dynamo.Tables{Payments: cfg.PaymentsTable}, cfg.Retention), where, nil
}
