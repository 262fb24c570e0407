package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/records"
)

var coverageCommand = command{
	name:    "coverage",
	summary: "which declared orders have no payment record, and which records no declared order",
	run:     runCoverage,
}

// coverageAbout is the help text of `ceb179 coverage`.
const coverageAbout = `
Compares the orders the platform declared to customs with the payment
records ceb179 holds. ORDERS (a file, or - for stdin) lists the declared
orders, one a line: the orderNo alone, or JSON Lines
{"orderNo":"...","declaredAt":"..."} (declaredAt optional: RFC 3339,
yyyyMMddHHmmss China time, or milliseconds since the epoch).

It prints the declared orders without a payment record (customs asking
for them would get NO_DATA) and the payment records, paid on a day from
--since to today (China days), of orders not in ORDERS. --since also
leaves out declared orders declared before that day; without it, it is
the earliest declaredAt of ORDERS (no such check when none is given).

Without --local the table is PAYMENTS_TABLE and the endpoint the usual AWS
settings (AWS_ENDPOINT_URL, AWS_REGION, credentials). Exit 0 when every
declared order has a record; 1 when any has none or the table cannot be
read; 2 on usage errors or unreadable input.`

// coverageReport is what `ceb179 coverage --json` prints.
type coverageReport struct {
	// Declared counts the declared orders checked.
	Declared int `json:"declared"`
	// Recorded counts those with a payment record.
	Recorded int `json:"recorded"`
	// Missing are the declared orders without a payment record.
	Missing []string `json:"missing"`
	// Since is the first China day of the check for undeclared records.
	Since string `json:"since,omitempty"`
	// Undeclared are the orders of payment records paid from Since on
	// that are not among the declared orders.
	Undeclared []string `json:"undeclared"`
}

func runCoverage(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var (
		local   bool
		dataDir string
		since   string
		asJSON  bool
	)
	fs := newFlagSet("coverage", "[--local [--data DIR]] [--since YYYY-MM-DD] [--json] ORDERS", coverageAbout)
	fs.BoolVar(&local, "local", false, "use the running local stack (`ceb179 local`)")
	fs.StringVar(&dataDir, "data", devstack.DefaultDir, "data directory of the local stack (with --local)")
	fs.StringVar(&since, "since", "", "first China day to check, YYYY-MM-DD")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return fs.usageError(stderr, "exactly one ORDERS file (- for stdin)")
	}
	var from time.Time
	if since != "" {
		t, err := time.ParseInLocation(time.DateOnly, since, ceb179.China)
		if err != nil {
			return fs.usageError(stderr, "--since must be a date, YYYY-MM-DD")
		}
		from = t
	}
	in, err := openInput(pos[0], stdin)
	if err != nil {
		return fail(stderr, fs.name, exitUsage, err)
	}
	orders, err := readDeclared(in)
	in.Close()
	if err != nil {
		return fail(stderr, fs.name, exitUsage, fmt.Errorf("%s: %w", pos[0], err))
	}
	if from.IsZero() {
		for _, o := range orders {
			if !o.DeclaredAt.IsZero() && (from.IsZero() || o.DeclaredAt.Before(from)) {
				from = o.DeclaredAt
			}
		}
	} else {
		orders = slices.DeleteFunc(orders, func(o records.DeclaredOrder) bool { return !o.DeclaredAt.IsZero() && o.DeclaredAt.Before(from) })
	}
	store, where, err := paymentsStore(ctx, local, dataDir)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	rep := coverageReport{Declared: len(orders), Missing: []string{}, Undeclared: []string{}}
	declared := make(map[string]bool, len(orders))
	nos := make([]string, len(orders))
	for i, o := range orders {
		nos[i], declared[o.OrderNo] = o.OrderNo, true
	}
	paid, err := store.PaidOrders(ctx, nos)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	for _, no := range nos {
		if _, ok := paid[no]; ok {
			rep.Recorded++
		} else {
			rep.Missing = append(rep.Missing, no)
		}
	}
	if !from.IsZero() {
		rep.Since = ceb179.Day(from)
		for d := from; !d.After(time.Now()); d = d.AddDate(0, 0, 1) {
			day, err := store.PaidOrdersOfDay(ctx, ceb179.Day(d))
			if err != nil {
				return fail(stderr, fs.name, exitFail, err)
			}
			for _, no := range day {
				if !declared[no] {
					rep.Undeclared = append(rep.Undeclared, no)
				}
			}
		}
		slices.Sort(rep.Undeclared)
	}
	if asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
	} else {
		printCoverage(stdout, rep, pos[0], where)
	}
	if len(rep.Missing) > 0 {
		return exitFail
	}
	return exitOK
}

// printCoverage writes the human-readable report.
func printCoverage(w io.Writer, rep coverageReport, name, where string) {
	fmt.Fprintf(w, "%s: %d declared orders, %d with a payment record, %d without (in %s)\n",
		name, rep.Declared, rep.Recorded, len(rep.Missing), where)
	if len(rep.Missing) > 0 {
		fmt.Fprintf(w, "\nno payment record (customs asking for them gets NO_DATA; import their records):\n")
		for _, no := range rep.Missing {
			fmt.Fprintf(w, "  %s\n", no)
		}
	}
	if rep.Since == "" {
		fmt.Fprintln(w, "\nrecords of orders not declared: not checked (give --since or declaredAt)")
		return
	}
	fmt.Fprintf(w, "\nrecords of orders not declared, paid since %s: %d\n", rep.Since, len(rep.Undeclared))
	for _, no := range rep.Undeclared {
		fmt.Fprintf(w, "  %s\n", no)
	}
}

// openInput opens the file name, or stdin for "-".
func openInput(name string, stdin io.Reader) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(name)
}

// readDeclared reads declared orders, one a line; blank lines are
// skipped. Lines that cannot be read or break the orderNo rule are
// reported together (at most 10), by line number.
func readDeclared(r io.Reader) ([]records.DeclaredOrder, error) {
	var (
		out  []records.DeclaredOrder
		bad  []string
		line int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		o, err := records.ParseDeclaredOrder(b)
		if err == nil {
			err = o.Validate()
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %s", line, strings.Join(records.Reasons(err), "; ")))
			continue
		}
		out = append(out, o)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%d unreadable lines: %s", len(bad), strings.Join(bad[:min(len(bad), 10)], ", "))
	}
	return out, nil
}
