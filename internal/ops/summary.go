package ops

import (
	"cmp"
	"context"
	"github.com/ceb179/ceb179/internal/settle"
	"slices"
	"time"

	"github.com/ceb179/ceb179"
)

// Outcome is how a request of the day stands, as the status reports it.
type Outcome string

// Outcomes of a request. On time and late are the ACCEPTED requests,
// split by whether the accepted post was sent before the deadline.
const (
	OutcomeOnTime   Outcome = "ON_TIME"
	OutcomeLate     Outcome = "LATE"
	OutcomeNoData   Outcome = "NO_DATA"
	OutcomeInvalid  Outcome = "INVALID"
	OutcomeRejected Outcome = "REJECTED"
	OutcomeFailed   Outcome = "FAILED"
	// OutcomeCapped: recorded CAPPED by an earlier version (over its
	// order's daily cap, answered but never signed). A request over the
	// cap is now signed with the low priority and ends like any other.
	OutcomeCapped     Outcome = "CAPPED"
	OutcomeInProgress Outcome = "IN_PROGRESS"
	// OutcomeStuck: not final and past its deadline (and, when SIGNED,
	// past the upload's retry window too).
	OutcomeStuck Outcome = "STUCK"
)

// Outcomes lists every outcome in the order reports show them.
var Outcomes = []Outcome{OutcomeOnTime, OutcomeLate, OutcomeNoData, OutcomeInvalid, OutcomeRejected, OutcomeFailed, OutcomeCapped, OutcomeStuck, OutcomeInProgress}

// OutcomeOf classifies request v at now.
func OutcomeOf(v ceb179.RequestView, now time.Time) Outcome {
	switch v.State {
	case ceb179.StateAccepted:
		if !v.LastAttemptAt.IsZero() && v.LastAttemptAt.After(v.Deadline) {
			return OutcomeLate
		}
		return OutcomeOnTime
	case ceb179.StateNoData:
		return OutcomeNoData
	case ceb179.StateInvalid:
		return OutcomeInvalid
	case ceb179.StateRejected:
		return OutcomeRejected
	case ceb179.StateFailed:
		return OutcomeFailed
	case ceb179.StateCapped:
		return OutcomeCapped
	}
	limit := v.DueAt(ceb179.Window)
	if v.State == ceb179.StateSigned {
		limit = limit.Add(ceb179.StuckAfter)
	}
	if now.After(limit) {
		return OutcomeStuck
	}
	return OutcomeInProgress
}

// Counts counts requests by outcome.
type Counts struct {
	// Requests is how many requests customs made.
	Requests int `json:"requests"`
	// By counts them by outcome.
	By map[Outcome]int `json:"by"`
}

func (c *Counts) add(o Outcome) {
	if c.By == nil {
		c.By = map[Outcome]int{}
	}
	c.Requests++
	c.By[o]++
}

// Accepted is how many requests customs accepted (on time or late).
func (c Counts) Accepted() int { return c.By[OutcomeOnTime] + c.By[OutcomeLate] }

// Decided is how many requests are past their outcome (not in progress).
func (c Counts) Decided() int { return c.Requests - c.By[OutcomeInProgress] }

// OnTimeRate is the share of decided requests accepted on time (1 with none).
func (c Counts) OnTimeRate() float64 {
	if c.Decided() == 0 {
		return 1
	}
	return float64(c.By[OutcomeOnTime]) / float64(c.Decided())
}

// EbpCounts are the counts of one ebpCode.
type EbpCounts struct {
	// EbpCode is the platform code ("" for requests never assembled:
	// NO_DATA, INVALID, CAPPED, waiting).
	EbpCode string `json:"ebpCode"`
	Counts
}

// Point is one request on the day's timeline.
type Point struct {
	SessionID  string    `json:"sessionID"`
	ReceivedAt time.Time `json:"receivedAt"`
	Outcome    Outcome   `json:"outcome"`
	// EndToEnd is from the request to the accepted post (0 unless accepted).
	EndToEnd time.Duration `json:"endToEndMs"`
}

// Failure is a request that did not end on time, for the failures list.
type Failure struct {
	SessionID  string       `json:"sessionID"`
	OrderNo    string       `json:"orderNo"`
	EbpCode    string       `json:"ebpCode,omitempty"`
	ReceivedAt time.Time    `json:"receivedAt"`
	State      ceb179.State `json:"state"`
	Outcome    Outcome      `json:"outcome"`
	Reason     string       `json:"reason,omitempty"`
	Replays    int          `json:"replays,omitempty"`
}

// Bucket is one bar of the end-to-end latency histogram: requests accepted
// in (previous bucket's Upper, Upper]; the last bucket has no upper bound.
type Bucket struct {
	// Upper is the bucket's upper bound (0 for the open last bucket).
	Upper time.Duration `json:"upperMs"`
	// Count is how many accepted requests fall in it.
	Count int `json:"count"`
}

// HistogramBounds are the upper bounds of the latency histogram's buckets.
var HistogramBounds = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second,
	30 * time.Second, 60 * time.Second, 90 * time.Second, 120 * time.Second, 5 * time.Minute,
}

// Day is the summary of one China calendar day.
type Day struct {
	// Day is yyyy-mm-dd, China time.
	Day string `json:"day"`
	Counts
	// ByEbpCode splits the counts by ebpCode, biggest first.
	ByEbpCode []EbpCounts `json:"byEbpCode"`
	// Histogram is the end-to-end latency of the accepted requests.
	Histogram []Bucket `json:"histogram"`
	// P50, P95 and P99 are percentiles of that latency.
	P50 time.Duration `json:"p50Ms"`
	P95 time.Duration `json:"p95Ms"`
	P99 time.Duration `json:"p99Ms"`
	// Failures are the requests that are neither on time nor in progress,
	// oldest first.
	Failures []Failure `json:"failures"`
	// Timeline has every request of the day (filled by DayDetail only).
	Timeline []Point `json:"timeline,omitempty"`
}

// Summary returns the summary of day (yyyy-mm-dd, China time), without
// the timeline.
func (s *Service) Summary(ctx context.Context, day string) (Day, error) {
	return s.summary(ctx, day, false)
}

// DayDetail returns the summary of day with its timeline.
func (s *Service) DayDetail(ctx context.Context, day string) (Day, error) {
	return s.summary(ctx, day, true)
}

func (s *Service) summary(ctx context.Context, day string, timeline bool) (Day, error) {
	now := s.now()
	d := Day{Day: day, Counts: Counts{By: map[Outcome]int{}}}
	var views []ceb179.RequestView
	if err := s.store.RequestsOfDay(ctx, day, func(v ceb179.RequestView) error {
		views = append(views, v)
		return nil
	}); err != nil {
		return Day{}, err
	}
	var assembled []string
	for _, v := range views {
		if v.State != ceb179.StateReceived && v.State != ceb179.StateNoData && v.State != ceb179.StateInvalid && v.State != ceb179.StateCapped {
			assembled = append(assembled, v.SessionID)
		}
	}
	ebp, err := s.store.EbpCodes(ctx, assembled)
	if err != nil {
		return Day{}, err
	}
	byEbp := map[string]*EbpCounts{}
	var lat []time.Duration
	for _, v := range views {
		o := OutcomeOf(v, now)
		code := ebp[v.SessionID]
		d.add(o)
		e := byEbp[code]
		if e == nil {
			e = &EbpCounts{EbpCode: code}
			byEbp[code] = e
		}
		e.add(o)
		p := Point{SessionID: v.SessionID, ReceivedAt: v.ReceivedAt, Outcome: o}
		if (o == OutcomeOnTime || o == OutcomeLate) && !v.LastAttemptAt.IsZero() {
			p.EndToEnd = max(v.LastAttemptAt.Sub(v.ReceivedAt), 0)
			lat = append(lat, p.EndToEnd)
		}
		if timeline {
			d.Timeline = append(d.Timeline, p)
		}
		if o != OutcomeOnTime && o != OutcomeInProgress {
			d.Failures = append(d.Failures, Failure{SessionID: v.SessionID, OrderNo: v.OrderNo, EbpCode: code,
				ReceivedAt: v.ReceivedAt, State: v.State, Outcome: o, Reason: v.Reason, Replays: v.Replays})
		}
	}
	for _, e := range byEbp {
		d.ByEbpCode = append(d.ByEbpCode, *e)
	}
	slices.SortFunc(d.ByEbpCode, func(a, b EbpCounts) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.EbpCode, b.EbpCode))
	})
	d.Histogram = histogram(lat)
	slices.Sort(lat)
	d.P50, d.P95, d.P99 = percentile(lat, 0.50), percentile(lat, 0.95), percentile(lat, 0.99)
	return d, nil
}

func histogram(lat []time.Duration) []Bucket {
	out := make([]Bucket, len(HistogramBounds)+1)
	for i, b := range HistogramBounds {
		out[i].Upper = b
	}
	for _, l := range lat {
		i, _ := slices.BinarySearch(HistogramBounds, l)
		out[i].Count++
	}
	return out
}

// percentile returns the p-th fraction (0..1) of sorted, 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// Status is the operator's overview: today in full, the days before in
// counts, and the signer's health when known.
type Status struct {
	// GeneratedAt is when the status was taken.
	GeneratedAt time.Time `json:"generatedAt"`
	// Today is the summary of the day asked for (today by default).
	Today Day `json:"today"`
	// Days are the counts of that day and the days before it, newest first.
	Days []DayCounts `json:"days"`
	// Signer is hsmbridge's status, when asked for and reachable.
	Signer *ceb179.SignerHealth `json:"signer,omitempty"`
	// Missing are the declared orders still without a payment record
	// after the grace, when the service knows where to look.
	Missing *settle.MissingReport `json:"missing,omitempty"`
	// MissingError says why Missing could not be read.
	MissingError string `json:"missingError,omitempty"`
}

// DayCounts are the counts of one day.
type DayCounts struct {
	Day string `json:"day"`
	Counts
	// OnTimeRate is Counts.OnTimeRate, for JSON readers.
	OnTimeRate float64 `json:"onTimeRate"`
}

// Status returns the summary of day (today when "") with its timeline, and
// the counts of the days-1 days before it.
func (s *Service) Status(ctx context.Context, day string, days int) (Status, error) {
	now := s.now()
	if day == "" {
		day = ceb179.Day(now)
	}
	start, err := time.ParseInLocation(time.DateOnly, day, ceb179.China)
	if err != nil {
		return Status{}, err
	}
	st := Status{GeneratedAt: now}
	if s.missing != nil {
		if m, err := s.missing(ctx); err != nil {
			st.MissingError = err.Error()
		} else {
			st.Missing = &m
		}
	}
	if st.Today, err = s.DayDetail(ctx, day); err != nil {
		return Status{}, err
	}
	st.Days = append(st.Days, DayCounts{Day: day, Counts: st.Today.Counts, OnTimeRate: st.Today.OnTimeRate()})
	for i := 1; i < max(days, 1); i++ {
		d := start.AddDate(0, 0, -i).Format(time.DateOnly)
		c := Counts{By: map[Outcome]int{}}
		if err := s.store.RequestsOfDay(ctx, d, func(v ceb179.RequestView) error {
			c.add(OutcomeOf(v, now))
			return nil
		}); err != nil {
			return Status{}, err
		}
		st.Days = append(st.Days, DayCounts{Day: d, Counts: c, OnTimeRate: c.OnTimeRate()})
	}
	return st, nil
}
