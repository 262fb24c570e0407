package ops

import (
	"encoding/json"
	"time"

	"github.com/ceb179/ceb179"
)

// The JSON of the operator views is a public interface (`ceb179 status
// --json`, `ceb179 show --json`): names in camelCase, durations in
// milliseconds under names ending in Ms, lists as [] when empty, and no
// zero times. These methods write it.

// millis returns d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON writes the point with its latency in milliseconds.
func (p Point) MarshalJSON() ([]byte, error) {
	type plain Point
	return json.Marshal(struct {
		plain
		EndToEnd float64 `json:"endToEndMs"`
	}{plain(p), millis(p.EndToEnd)})
}

// MarshalJSON writes the bucket with its bound in milliseconds.
func (b Bucket) MarshalJSON() ([]byte, error) {
	type plain Bucket
	return json.Marshal(struct {
		plain
		Upper float64 `json:"upperMs"`
	}{plain(b), millis(b.Upper)})
}

// MarshalJSON writes the day with its percentiles in milliseconds and
// empty lists as [].
func (d Day) MarshalJSON() ([]byte, error) {
	type plain Day
	out := struct {
		plain
		P50 float64 `json:"p50Ms"`
		P95 float64 `json:"p95Ms"`
		P99 float64 `json:"p99Ms"`
	}{plain(d), millis(d.P50), millis(d.P95), millis(d.P99)}
	if out.ByEbpCode == nil {
		out.ByEbpCode = []EbpCounts{}
	}
	if out.Histogram == nil {
		out.Histogram = []Bucket{}
	}
	if out.Failures == nil {
		out.Failures = []Failure{}
	}
	if out.By == nil {
		out.By = map[Outcome]int{}
	}
	return json.Marshal(out)
}

// RequestJSON is a request item as `ceb179 show --json` writes it.
type RequestJSON struct {
	SessionID     string       `json:"sessionID"`
	OrderNo       string       `json:"orderNo"`
	ServiceTime   int64        `json:"serviceTime"`
	ReceivedAt    time.Time    `json:"receivedAt"`
	SourceIP      string       `json:"sourceIP,omitempty"`
	Deadline      time.Time    `json:"deadline"`
	State         ceb179.State `json:"state"`
	Enqueued      bool         `json:"enqueued"`
	Reason        string       `json:"reason,omitempty"`
	LastAttemptAt *time.Time   `json:"lastAttemptAt,omitempty"`
	LeaseOwner    string       `json:"leaseOwner,omitempty"`
	LeaseUntil    *time.Time   `json:"leaseUntil,omitempty"`
	Replays       int          `json:"replays,omitempty"`
	LastReplayAt  *time.Time   `json:"lastReplayAt,omitempty"`
	LastReplayBy  string       `json:"lastReplayBy,omitempty"`
	LastReplayWhy string       `json:"lastReplayWhy,omitempty"`
	Settles       int          `json:"settles,omitempty"`
	LastSettleAt  *time.Time   `json:"lastSettleAt,omitempty"`
	LastSettleWhy string       `json:"lastSettleWhy,omitempty"`
}

// NewRequestJSON returns the JSON form of a request item.
func NewRequestJSON(v ceb179.RequestView) RequestJSON {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return RequestJSON{
		SessionID: v.SessionID, OrderNo: v.OrderNo, ServiceTime: v.ServiceTime, ReceivedAt: v.ReceivedAt,
		SourceIP: v.SourceIP, Deadline: v.Deadline, State: v.State, Enqueued: v.Enqueued, Reason: v.Reason,
		LastAttemptAt: at(v.LastAttemptAt), LeaseOwner: v.LeaseOwner, LeaseUntil: at(v.LeaseUntil),
		Replays: v.Replays, LastReplayAt: at(v.LastReplayAt), LastReplayBy: v.LastReplayBy, LastReplayWhy: v.LastReplayWhy,
		Settles: v.Settles, LastSettleAt: at(v.LastSettleAt), LastSettleWhy: v.LastSettleWhy,
	}
}

// MarshalJSON writes the trail with its request in camelCase and empty
// lists as [].
func (t Trail) MarshalJSON() ([]byte, error) {
	type plain Trail
	out := struct {
		plain
		Request RequestJSON `json:"request"`
	}{plain(t), NewRequestJSON(t.Request)}
	if out.Attempts == nil {
		out.Attempts = []Attempt{}
	}
	if out.Events == nil {
		out.Events = []Event{}
	}
	return json.Marshal(out)
}

// fromMillis is the inverse of millis.
func fromMillis(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Point) UnmarshalJSON(b []byte) error {
	type plain Point
	var in struct {
		plain
		EndToEnd float64 `json:"endToEndMs"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*p = Point(in.plain)
	p.EndToEnd = fromMillis(in.EndToEnd)
	return nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *Bucket) UnmarshalJSON(data []byte) error {
	type plain Bucket
	var in struct {
		plain
		Upper float64 `json:"upperMs"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*b = Bucket(in.plain)
	b.Upper = fromMillis(in.Upper)
	return nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Day) UnmarshalJSON(b []byte) error {
	type plain Day
	var in struct {
		plain
		P50 float64 `json:"p50Ms"`
		P95 float64 `json:"p95Ms"`
		P99 float64 `json:"p99Ms"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*d = Day(in.plain)
	d.P50, d.P95, d.P99 = fromMillis(in.P50), fromMillis(in.P95), fromMillis(in.P99)
	return nil
}
