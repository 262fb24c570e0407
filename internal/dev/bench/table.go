package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Standard returns the scenarios of the project's goals: (a) a burst of
// 10,000 requests with a key-file signer, (b) 50 requests a second for a
// minute, (c) 1,500 requests over two minutes against one card-speed signer,
// (d) the same with four, (e) 1,000 requests at 50 a second of which 30%
// are for orders with no record, key file, (f) a burst of 40
// unknown-order requests followed by 10 known ones (the goal of both: a
// known order is never held up by unknown ones, p99 ≤ 2 s), and (g)
// 10,000 requests over 15 minutes of which 30% are over their orders'
// daily cap, no allowlist, one signer fast enough for the requests within
// the cap (467 a minute) but not for all (667 a minute): the goal is every
// request uploaded, those within the cap on time, those over it after
// them. The card scenarios wait up to eight minutes after
// the last request, time for one card to sign every late request too.
// compress speeds up (c) and (d); scale (0..1]
// shrinks every request count and duration alike, for a quick run.
func Standard(compress, scale float64) []Scenario {
	if scale <= 0 || scale > 1 {
		scale = 1
	}
	n := func(v int) int { return max(1, int(float64(v)*scale)) }
	d := func(v time.Duration) time.Duration { return time.Duration(float64(v) * scale) }
	return []Scenario{
		{Name: "(a) burst of 10,000, key file", Requests: n(10000)},
		{Name: "(b) 50/s for a minute, key file", Requests: n(3000), Over: d(time.Minute)},
		{Name: "(c) 1,500 over 120 s, 1 card", Requests: n(1500), Over: d(120 * time.Second), Window: d(120 * time.Second), SignRate: CardRate, Compress: compress, Drain: d(480 * time.Second)},
		{Name: "(d) 1,500 over 120 s, 4 cards", Requests: n(1500), Over: d(120 * time.Second), Window: d(120 * time.Second), SignRate: CardRate, Signers: 4, Compress: compress, Drain: d(480 * time.Second)},
		{Name: "(e) 1,000 at 50/s, 30% unknown orders, key file", Requests: n(1000), Over: d(20 * time.Second), Unknown: 0.3, Drain: 30 * time.Second},
		{Name: "(f) 40 unknown orders at once, then 10 known", Requests: 50, UnknownFirst: 40, Over: time.Second, Drain: 30 * time.Second},
		{Name: "(g) 10,000 over 15 min, 30% over the cap, 1 signer at 560/min", Requests: n(10000), Over: d(15 * time.Minute),
			SignRate: 560, OverCap: 0.3, Drain: d(6 * time.Minute)},
	}
}

// WriteTable writes results as one table, and for scenarios with requests
// over the daily cap a second one that splits them by the cap.
func WriteTable(w io.Writer, results []Result) error {
	if err := writeMain(w, results); err != nil {
		return err
	}
	return writeCap(w, results)
}

// writeCap writes the requests within and over the cap of the scenarios
// that have some over it.
func writeCap(w io.Writer, results []Result) error {
	var capped []Result
	for _, r := range results {
		if r.Scenario.OverCap > 0 {
			capped = append(capped, r)
		}
	}
	if len(capped) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tin cap\tuploaded\ton time\ton-time %\te2e p50\te2e p99\tover cap\tuploaded\ton time\te2e p50\te2e p99\t")
	for _, r := range capped {
		c := r.Cap
		pct := 0.0
		if c.InCap > 0 {
			pct = 100 * float64(c.InCapOnTime) / float64(c.InCap)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n", r.Scenario.Name,
			c.InCap, c.InCapUploaded, c.InCapOnTime, pct, sec(Percentile(c.InCapEndToEnd, 0.5)), sec(Percentile(c.InCapEndToEnd, 0.99)),
			c.Over, c.OverUploaded, c.OverOnTime, sec(Percentile(c.OverEndToEnd, 0.5)), sec(Percentile(c.OverEndToEnd, 0.99)))
	}
	return tw.Flush()
}

func writeMain(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmode\trequests\tacked\tack p50\tack p99\te2e p50\te2e p99\te2e max\tknown\tuploads\ton time\ton-time %\tmax on time\tFIFO on time\t")
	for _, r := range results {
		mode := "real time"
		if r.Scenario.Compress > 1 {
			mode = fmt.Sprintf("time ÷%g", r.Scenario.Compress)
		}
		maxCol, fifoCol := "-", "-"
		if r.PhysicalMax > 0 {
			maxCol, fifoCol = fmt.Sprint(r.PhysicalMax), fmt.Sprint(r.FIFO)
		}
		pct := 0.0
		if r.Known > 0 {
			pct = 100 * float64(r.OnTime) / float64(r.Known)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t\n",
			r.Scenario.Name, mode, r.Sent, r.Acked,
			ms(Percentile(r.AckLatency, 0.5)), ms(Percentile(r.AckLatency, 0.99)),
			sec(Percentile(r.EndToEnd, 0.5)), sec(Percentile(r.EndToEnd, 0.99)), sec(Percentile(r.EndToEnd, 1)),
			r.Known, r.Uploads, r.OnTime, pct, maxCol, fifoCol)
	}
	return tw.Flush()
}

func ms(d time.Duration) string  { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
