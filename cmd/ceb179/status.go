package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ceb179/ceb179/internal/ops"
)

var statusCommand = command{
	name:    "status",
	summary: "today and the last 7 days: requests on time, late, failed, per ebpCode; signer health",
	run:     runStatus,
}

func runStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var t opsTarget
	fs := newFlagSet("status", "[--local [--data DIR]] [--day YYYY-MM-DD] [--days N] [--bridge URL] [--failures N] [--check] [--json] [--serve ADDR]", `
Shows how customs' requests of a day (today by default; days are China
calendar days) were answered: requests, accepted on time, late, NO_DATA,
INVALID, REJECTED, FAILED, CAPPED (recorded by earlier versions only:
over an order's daily cap, never signed; a request over the cap is now
signed after the others and counted like any other), stuck (not final
past the deadline) and in
progress, the on-time rate, end-to-end latency percentiles, the same per
ebpCode, the counts of the days before, hsmbridge's signer health when
--bridge names its status endpoint, and the requests that were not on time.

On time: customs accepted the upload and the accepted post was sent before
the request's deadline (received + 120 s).

--serve ADDR serves the status page (HTML) on ADDR (loopback only) instead
of printing: GET /status, with the trail of each failure under
/status/trail/SESSION.

Without --local the table is REQUESTS_TABLE and the endpoint the usual AWS
settings (AWS_ENDPOINT_URL, AWS_REGION, credentials). Exit 0 when read (with
--check: 1 when any request of the day was not on time and is not in
progress); 1 when the table cannot be read.`)
	t.addFlags(fs)
	day := fs.String("day", "", "the day to show, YYYY-MM-DD China time (default today)")
	days := fs.Int("days", 7, "how many days to count, the shown day included")
	bridgeURL := fs.String("bridge", "", "hsmbridge's status endpoint, e.g. http://127.0.0.1:9179/status")
	failures := fs.Int("failures", 20, "how many failures to list (--json lists all)")
	check := fs.Bool("check", false, "exit 1 when a request of the day was not on time")
	serve := fs.String("serve", "", "serve the status page on ADDR (e.g. 127.0.0.1:8081) instead of printing")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return fs.usageError(stderr, "unexpected argument "+pos[0])
	}
	if *days < 1 || *days > 366 {
		return fs.usageError(stderr, "--days must be 1..366")
	}
	if *day != "" {
		if _, err := time.Parse(time.DateOnly, *day); err != nil {
			return fs.usageError(stderr, "--day must be a date, YYYY-MM-DD, not "+strconv.Quote(*day))
		}
	}
	e, err := t.open(ctx)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if *serve != "" {
		return serveStatus(ctx, e, *serve, *bridgeURL, stdout, stderr)
	}
	st, err := e.service.Status(ctx, *day, *days)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if *bridgeURL != "" {
		h, err := ops.FetchSignerHealth(ctx, *bridgeURL)
		if err != nil {
			fmt.Fprintf(stderr, "ceb179: status: signer health unknown: %v\n", err)
		} else {
			st.Signer = h
		}
	}
	if t.json {
		st.Today.Timeline = nil
		if err := writeJSON(stdout, st); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
	} else {
		printStatus(stdout, st, e.where, *failures)
	}
	if *check && len(st.Today.Failures) > 0 {
		return exitFail
	}
	return exitOK
}

// countColumns are the outcome columns of the status tables.
var countColumns = []struct {
	title string
	o     ops.Outcome
}{
	{"on time", ops.OutcomeOnTime}, {"late", ops.OutcomeLate}, {"NO_DATA", ops.OutcomeNoData}, {"INVALID", ops.OutcomeInvalid},
	{"REJECTED", ops.OutcomeRejected}, {"FAILED", ops.OutcomeFailed}, {"CAPPED", ops.OutcomeCapped}, {"stuck", ops.OutcomeStuck}, {"in progress", ops.OutcomeInProgress},
}

func countHeader(first string) string {
	var b strings.Builder
	b.WriteString(first + "\trequests")
	for _, c := range countColumns {
		b.WriteString("\t" + c.title)
	}
	b.WriteString("\ton-time rate\t\n")
	return b.String()
}

func countRow(first string, c ops.Counts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\t%d", first, c.Requests)
	for _, col := range countColumns {
		fmt.Fprintf(&b, "\t%d", c.By[col.o])
	}
	if c.Decided() == 0 {
		b.WriteString("\t-\t\n")
	} else {
		fmt.Fprintf(&b, "\t%.2f%%\t\n", 100*c.OnTimeRate())
	}
	return b.String()
}

// printStatus writes the human-readable status.
func printStatus(w io.Writer, st ops.Status, where string, maxFailures int) {
	d := st.Today
	fmt.Fprintf(w, "ceb179 status of %s (China time) from %s, at %s\n\n", d.Day, where, clockTime(st.GeneratedAt))
	fmt.Fprintf(w, "requests %d, on time %d (%.2f%%), late %d, NO_DATA %d, INVALID %d, REJECTED %d, FAILED %d, CAPPED %d, stuck %d, in progress %d\n",
		d.Requests, d.By[ops.OutcomeOnTime], 100*d.OnTimeRate(), d.By[ops.OutcomeLate], d.By[ops.OutcomeNoData], d.By[ops.OutcomeInvalid],
		d.By[ops.OutcomeRejected], d.By[ops.OutcomeFailed], d.By[ops.OutcomeCapped], d.By[ops.OutcomeStuck], d.By[ops.OutcomeInProgress])
	if d.Accepted() > 0 {
		fmt.Fprintf(w, "end to end (request to accepted post): p50 %s, p95 %s, p99 %s\n", seconds(d.P50), seconds(d.P95), seconds(d.P99))
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nper ebpCode")
	fmt.Fprint(tw, countHeader("ebpCode"))
	for _, e := range d.ByEbpCode {
		code := e.EbpCode
		if code == "" {
			code = "(not assembled)"
		}
		fmt.Fprint(tw, countRow(code, e.Counts))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nlast %d days\n", len(st.Days))
	fmt.Fprint(tw, countHeader("day"))
	for _, dc := range st.Days {
		fmt.Fprint(tw, countRow(dc.Day, dc.Counts))
	}
	tw.Flush()

	if s := st.Signer; s != nil {
		fmt.Fprintf(w, "\nsigner (hsmbridge at %s): %d jobs held, %d waiting, %d hopeless\n", clockTime(s.Time), s.InMemory, s.Waiting, s.Hopeless)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "signer\tebpCode\tstate\tsigns\tfailures\tper minute\tlast error\t")
		for _, sg := range s.Signers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t\n", sg.Name, sg.EbpCode, sg.State, sg.Signs, sg.Failures, sg.SignsPerMinute, sg.LastError)
		}
		tw.Flush()
	}

	printMissing(w, st, maxFailures)
	if len(d.Failures) == 0 {
		fmt.Fprintln(w, "\nno failures")
		return
	}
	n := min(len(d.Failures), max(maxFailures, 0))
	fmt.Fprintf(w, "\nnot on time: %d (showing %d; `ceb179 show SESSION` for a trail, `ceb179 replay SESSION` to replay)\n", len(d.Failures), n)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "received\tsessionID\torderNo\tebpCode\toutcome\treason\t")
	for _, f := range d.Failures[:n] {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", clockTime(f.ReceivedAt)[11:19], f.SessionID, f.OrderNo, f.EbpCode, f.Outcome, oneLine(f.Reason, 80))
	}
	tw.Flush()
}

// oneLine shortens s to n runes on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// printMissing writes the declared orders still without a payment record.
func printMissing(w io.Writer, st ops.Status, max int) {
	m := st.Missing
	switch {
	case st.MissingError != "":
		fmt.Fprintf(w, "\ndeclared orders without a payment record: unknown (%s)\n", st.MissingError)
		return
	case m == nil:
		return
	case m.Missing == 0:
		fmt.Fprintf(w, "\ndeclared orders without a payment record after %s: none\n", m.Grace)
		return
	}
	more := ""
	if m.Truncated {
		more = "+"
	}
	n := min(len(m.Orders), max)
	fmt.Fprintf(w, "\ndeclared orders without a payment record after %s: %d%s (showing %d; customs asking for them gets NO_DATA: import their records)\n", m.Grace, m.Missing, more, n)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "declared\torderNo\t")
	for _, o := range m.Orders[:n] {
		fmt.Fprintf(tw, "%s\t%s\t\n", clockTime(o.DeclaredAt), o.OrderNo)
	}
	tw.Flush()
}
