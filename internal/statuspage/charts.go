package statuspage

import (
	"fmt"
	"math"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/ops"
)

// page is the data of page.html.
type page struct {
	ops.Status
	// Prev and Next are the neighbouring days ("" when Next would be in the future).
	Prev, Next string
	// Outcomes are the outcome columns of the tables.
	Outcomes []column
	// Timeline and Histogram are the charts' geometry.
	Timeline  timeline
	Histogram histogram
	// Failures are the listed failures; MoreFailures how many are not listed.
	Failures     []ops.Failure
	MoreFailures int
}

// column is one outcome column.
type column struct {
	Title   string
	Outcome ops.Outcome
}

var columns = []column{
	{"on time", ops.OutcomeOnTime}, {"late", ops.OutcomeLate}, {"NO_DATA", ops.OutcomeNoData}, {"INVALID", ops.OutcomeInvalid},
	{"REJECTED", ops.OutcomeRejected}, {"FAILED", ops.OutcomeFailed}, {"CAPPED", ops.OutcomeCapped}, {"stuck", ops.OutcomeStuck}, {"in progress", ops.OutcomeInProgress},
}

func newPage(st ops.Status, now time.Time) page {
	p := page{Status: st, Outcomes: columns}
	day, err := time.ParseInLocation(time.DateOnly, st.Today.Day, ceb179.China)
	if err == nil {
		p.Prev = day.AddDate(0, 0, -1).Format(time.DateOnly)
		if next := day.AddDate(0, 0, 1); !next.After(now) {
			p.Next = next.Format(time.DateOnly)
		}
		p.Timeline = newTimeline(day, st.Today.Timeline)
	}
	p.Histogram = newHistogram(st.Today.Histogram)
	p.Failures = st.Today.Failures
	if len(p.Failures) > maxFailureRows {
		p.MoreFailures = len(p.Failures) - maxFailureRows
		p.Failures = p.Failures[:maxFailureRows]
	}
	return p
}

// Geometry of the timeline (SVG user units).
const (
	tlWidth   = 1180
	tlLeft    = 56
	tlRight   = 30
	tlBand    = 26  // top band: requests without an accepted upload
	tlPlot    = 190 // latency scatter
	tlHours   = 56  // requests per hour
	tlGap     = 14
	tlAxis    = 22
	latMin    = 0.1 // seconds at the bottom of the scatter
	latMax    = 600 // seconds at the top
	plotWidth = tlWidth - tlLeft - tlRight
)

// timeline is the day's requests: a dot per request at its time of day,
// at the height of its end-to-end latency (log scale), failures as marks
// in a band above, and bars of requests per hour below.
type timeline struct {
	Width, Height float64
	Dots          []dot
	Marks         []dot
	Hours         []bar
	XTicks        []tick
	YTicks        []tick
	DeadlineY     float64
	PlotTop       float64
	PlotBottom    float64
	HoursTop      float64
	Left, Right   float64
	PlotWidth     float64
	MaxHour       int
}

// dot is one request on the timeline.
type dot struct {
	X, Y  float64
	Class string
	// Link and Title are set for failures.
	Link, Title string
}

// bar is one rectangle of a chart.
type bar struct {
	X, Y, W, H float64
	Class      string
	Label      string
	Count      int
	LabelX     float64
	LabelY     float64
}

// tick is an axis label.
type tick struct {
	X, Y  float64
	Label string
}

func latY(d time.Duration) float64 {
	s := math.Min(math.Max(d.Seconds(), latMin), latMax)
	f := (math.Log10(s) - math.Log10(latMin)) / (math.Log10(latMax) - math.Log10(latMin))
	return tlBand + tlGap + tlPlot*(1-f)
}

func newTimeline(day time.Time, points []ops.Point) timeline {
	t := timeline{Width: tlWidth, Left: tlLeft, Right: tlWidth - tlRight, PlotWidth: plotWidth}
	t.PlotTop = tlBand + tlGap
	t.PlotBottom = t.PlotTop + tlPlot
	t.HoursTop = t.PlotBottom + tlGap
	t.Height = t.HoursTop + tlHours + tlAxis
	t.DeadlineY = latY(ceb179.Window)
	x := func(at time.Time) float64 {
		f := float64(at.Sub(day)) / float64(24*time.Hour)
		return tlLeft + plotWidth*math.Min(math.Max(f, 0), 1)
	}
	var perHour [24]int
	for _, p := range points {
		h := int(p.ReceivedAt.Sub(day) / time.Hour)
		if h >= 0 && h < 24 {
			perHour[h]++
		}
		switch p.Outcome {
		case ops.OutcomeOnTime, ops.OutcomeLate:
			t.Dots = append(t.Dots, dot{X: round(x(p.ReceivedAt)), Y: round(latY(p.EndToEnd)), Class: lowerOutcome(p.Outcome)})
		default:
			t.Marks = append(t.Marks, dot{X: round(x(p.ReceivedAt)), Y: tlBand / 2, Class: lowerOutcome(p.Outcome),
				Link: trailLink(p.SessionID), Title: fmt.Sprintf("%s %s at %s", p.SessionID, p.Outcome, p.ReceivedAt.In(ceb179.China).Format("15:04:05"))})
		}
	}
	for _, n := range perHour {
		t.MaxHour = max(t.MaxHour, n)
	}
	hourW := plotWidth / 24.0
	for h, n := range perHour {
		bh := 0.0
		if t.MaxHour > 0 {
			bh = tlHours * float64(n) / float64(t.MaxHour)
		}
		t.Hours = append(t.Hours, bar{X: round(tlLeft + float64(h)*hourW + 1), Y: round(t.HoursTop + tlHours - bh), W: round(hourW - 2), H: round(bh), Count: n,
			Label: fmt.Sprintf("%02d:00–%02d:00 %d requests", h, h+1, n)})
	}
	for h := 0; h <= 24; h += 3 {
		t.XTicks = append(t.XTicks, tick{X: round(tlLeft + float64(h)*hourW), Y: t.Height - 6, Label: fmt.Sprintf("%02d:00", h)})
	}
	for _, s := range []struct {
		d     time.Duration
		label string
	}{{100 * time.Millisecond, "0.1 s"}, {time.Second, "1 s"}, {10 * time.Second, "10 s"}, {ceb179.Window, "120 s"}, {600 * time.Second, "600 s"}} {
		t.YTicks = append(t.YTicks, tick{X: tlLeft - 6, Y: round(latY(s.d) + 4), Label: s.label})
	}
	return t
}

func lowerOutcome(o ops.Outcome) string {
	switch o {
	case ops.OutcomeOnTime:
		return "ontime"
	case ops.OutcomeInProgress:
		return "progress"
	}
	return map[ops.Outcome]string{ops.OutcomeLate: "late", ops.OutcomeNoData: "nodata", ops.OutcomeInvalid: "invalid",
		ops.OutcomeRejected: "rejected", ops.OutcomeFailed: "failed", ops.OutcomeCapped: "capped", ops.OutcomeStuck: "stuck"}[o]
}

func round(f float64) float64 { return math.Round(f*10) / 10 }

// Geometry of the histogram.
const (
	hgWidth  = 580
	hgHeight = 250
	hgLeft   = 44
	hgTop    = 16
	hgPlot   = 180
)

// histogram is the end-to-end latency histogram of the accepted requests.
type histogram struct {
	Width, Height float64
	Bars          []bar
	Baseline      float64
	Left, Right   float64
	Max           int
}

func newHistogram(buckets []ops.Bucket) histogram {
	h := histogram{Width: hgWidth, Height: hgHeight, Baseline: hgTop + hgPlot, Left: hgLeft, Right: hgWidth - 8}
	for _, b := range buckets {
		h.Max = max(h.Max, b.Count)
	}
	if len(buckets) == 0 {
		return h
	}
	w := (h.Right - hgLeft) / float64(len(buckets))
	for i, b := range buckets {
		bh := 0.0
		if h.Max > 0 {
			bh = hgPlot * float64(b.Count) / float64(h.Max)
			if b.Count > 0 {
				bh = math.Max(bh, 1.5)
			}
		}
		label := "> " + short(buckets[max(i-1, 0)].Upper)
		if b.Upper > 0 {
			label = "≤ " + short(b.Upper)
		}
		class := "ontime"
		if b.Upper == 0 || b.Upper > ceb179.Window {
			class = "late"
		}
		x := hgLeft + float64(i)*w
		h.Bars = append(h.Bars, bar{X: round(x + 3), Y: round(h.Baseline - bh), W: round(w - 6), H: round(bh), Class: class, Label: label, Count: b.Count,
			LabelX: round(x + w/2), LabelY: round(h.Baseline - bh - 4)})
	}
	return h
}

func short(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return fmt.Sprintf("%g s", d.Seconds())
}
