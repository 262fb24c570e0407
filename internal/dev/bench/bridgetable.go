package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// signerColumn is one column of the signers' table of a bridge run.
type signerColumn struct {
	head string
	cell func(r BridgeResult, s SignerRate) string
}

// signerColumns are the columns of the signers' table, one figure each:
// a new figure of a signer is one more entry.
var signerColumns = []signerColumn{
	{"signer", func(_ BridgeResult, s SignerRate) string { return s.Name }},
	{"ebpCode", func(r BridgeResult, _ SignerRate) string { return r.EbpCode }},
	{"steady rate (warm-up)", func(_ BridgeResult, s SignerRate) string { return rateText(s.Warmup) }},
	{"back-to-back", func(_ BridgeResult, s SignerRate) string { return samplesText(s.Warmup) }},
	{"during the run", func(_ BridgeResult, s SignerRate) string { return rateText(s.Run) }},
	{"drift", func(_ BridgeResult, s SignerRate) string { return driftText(s) }},
}

// WriteBridge writes what a bridge run measured: each signer's steady
// rate, in the warm-up and during the run, with its spread; the scenario
// table (WriteTable); the uploads on time against the most possible at
// the measured rates, saying when a drift changed that bound; and how
// many such signers the run's load needs.
func WriteBridge(w io.Writer, r BridgeResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	heads := make([]string, len(signerColumns))
	for i, c := range signerColumns {
		heads[i] = c.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t")+"\t")
	for _, s := range r.Rates {
		cells := make([]string, len(signerColumns))
		for i, c := range signerColumns {
			cells[i] = c.cell(r, s)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := WriteTable(w, []Result{r.Result}); err != nil {
		return err
	}
	for _, line := range bridgeLines(r) {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// bridgeLines are the sentences under the tables of a bridge run.
func bridgeLines(r BridgeResult) []string {
	var lines []string
	for _, s := range r.Rates {
		if s.Drifted {
			lines = append(lines, fmt.Sprintf("%s drifted: %s in the warm-up, %s during the run (%+.1f%%).",
				s.Name, rateText(s.Warmup), rateText(s.Run), 100*(s.Run.PerMinute-s.Warmup.PerMinute)/s.Warmup.PerMinute))
		}
	}
	basis := "the measured rates"
	if r.Drifted() {
		basis = fmt.Sprintf("the rates seen during the run; %s at the warm-up's", thousands(r.WarmupMax))
	}
	pct := 0.0
	if r.PhysicalMax > 0 {
		pct = 100 * float64(r.OnTime) / float64(r.PhysicalMax)
	}
	lines = append(lines, fmt.Sprintf("on time %s of %s requests: %.1f%% of the most possible (%s at %s); first-in-first-out would get %s.",
		thousands(r.OnTime), thousands(r.Sent), pct, thousands(r.PhysicalMax), basis, thousands(r.FIFO)))
	sc := r.Scenario
	mean := totalRate(r.Rates) / float64(max(len(r.Rates), 1))
	need := "more than 1,000"
	if r.Needed > 0 {
		need = fmt.Sprint(r.Needed)
	}
	lines = append(lines, fmt.Sprintf("how many signers: %s requests over %s, each due %s after it arrives, need %s at %.1f/min each to be all on time.",
		thousands(sc.Requests), durText(sc.Over), durText(sc.Window), need, mean))
	return lines
}

// String is the rate with its spread: "250.0/min ±0.4", or "≥ ..." when
// it comes from call times.
func (r Rate) String() string { return rateText(r) }

// rateText is a rate with its spread: "250.0/min ±0.4", or "≥ ..." when
// it comes from call times.
func rateText(r Rate) string {
	if r.Samples == 0 {
		return "-"
	}
	if r.FromCalls {
		return fmt.Sprintf("≥ %.1f/min (call times)", r.PerMinute)
	}
	return fmt.Sprintf("%.1f/min ±%.1f", r.PerMinute, r.Spread)
}

// samplesText says what a rate was measured on: "62 over 14.9 s", or
// "none" when no signature was back-to-back.
func samplesText(r Rate) string {
	if r.FromCalls {
		return "none: the pipeline never kept it busy"
	}
	return fmt.Sprintf("%d over %.1f s", r.Samples, r.Over.Seconds())
}

// driftText says whether a signer drifted, and which rate the bounds use.
func driftText(s SignerRate) string {
	switch {
	case s.Drifted:
		return fmt.Sprintf("%+.1f%%: bound from the run's rate", 100*(s.Run.PerMinute-s.Warmup.PerMinute)/s.Warmup.PerMinute)
	case s.Warmup.FromCalls || s.Run.FromCalls || s.Run.Samples < minDriftSamples:
		return "too few to tell"
	default:
		return "none"
	}
}

// durText is a duration in seconds: "120 s", "3 s", "1.5 s".
func durText(d time.Duration) string {
	return fmt.Sprintf("%g s", d.Round(100*time.Millisecond).Seconds())
}

// thousands writes n with thousands separators: 1,500.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
