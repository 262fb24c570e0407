package bridge

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/ceb179/ceb179/internal/loopback"
)

// Status is the bridge's state as the status endpoint reports it.
type Status struct {
	// Time is when the status was taken.
	Time time.Time `json:"time"`
	// Policy is the scheduling policy.
	Policy string `json:"policy"`
	// InMemory is how many jobs the bridge holds (the backlog in use).
	InMemory int `json:"inMemory"`
	// MaxBacklog is the bound on InMemory.
	MaxBacklog int `json:"maxBacklog"`
	// Waiting is how many jobs wait for a signer and can still be on time.
	Waiting int `json:"waiting"`
	// Hopeless is how many waiting jobs can no longer be on time.
	Hopeless int `json:"hopeless"`
	// Queue is the sign queue's approximate depth, read every 30 s (absent
	// when the queue cannot tell).
	Queue *SQSDepth `json:"queue,omitempty"`
	// Totals are the counters since start: jobs received, uploads on
	// time and late, rejections, failures, jobs given back, alarms.
	Totals counters `json:"totals"`
	// Signers is the health and rate of each signer.
	Signers []SignerStatus `json:"signers"`
}

// SignerStatus is the state of one signer.
type SignerStatus struct {
	// Name is the signer's configured name.
	Name string `json:"name"`
	// EbpCode is the platform code it signs for.
	EbpCode string `json:"ebpCode"`
	// CertNo is its certificate's certNo, once opened.
	CertNo string `json:"certNo,omitempty"`
	// State is starting, healthy, unhealthy, or disabled followed by the
	// reason when it is known: "disabled: PIN refused".
	State string `json:"state"`
	// Concurrency is how many signatures it makes at once.
	Concurrency int `json:"concurrency"`
	// Signs counts its signatures since start.
	Signs int64 `json:"signs"`
	// Failures counts its failures since start.
	Failures int64 `json:"failures"`
	// SignsPerMinute counts its signatures in the last minute.
	SignsPerMinute int `json:"signsPerMinute"`
	// EstimateMs is its expected time per signature.
	EstimateMs int64 `json:"estimateMs"`
	// LastError is its last failure.
	LastError string `json:"lastError,omitempty"`
}

// Status returns the bridge's current state.
func (b *Bridge) Status() Status {
	st := Status{Time: time.Now(), Policy: b.o.Policy.String(), MaxBacklog: b.o.MaxBacklog}
	for _, d := range b.sched.depth() {
		st.Waiting += d[0]
		st.Hopeless += d[1]
	}
	b.mu.Lock()
	st.InMemory = len(b.held)
	st.Totals = b.st
	if b.depth != nil {
		d := *b.depth
		st.Queue = &d
	}
	b.mu.Unlock()
	now := time.Now()
	for _, m := range b.members {
		m.mu.Lock()
		ss := SignerStatus{
			Name: m.spec.Name, EbpCode: m.spec.EbpCode, State: stateText(m.state, m.reason),
			Concurrency: m.slots, Signs: m.signs, Failures: m.failures,
			EstimateMs: m.est.Milliseconds(), LastError: m.lastErr,
		}
		if m.s != nil {
			ss.CertNo = m.s.CertNo()
		}
		for _, t := range m.recent {
			if now.Sub(t) <= time.Minute {
				ss.SignsPerMinute++
			}
		}
		m.mu.Unlock()
		st.Signers = append(st.Signers, ss)
	}
	sort.Slice(st.Signers, func(a, c int) bool { return st.Signers[a].Name < st.Signers[c].Name })
	return st
}

// stateText is a signer's state as the status reports it.
func stateText(s memberState, reason string) string {
	if s == stateDisabled && reason != "" {
		return string(s) + ": " + reason
	}
	return string(s)
}

// StatusHandler serves Status as JSON on GET /status (and /).
func (b *Bridge) StatusHandler() http.Handler {
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.Status())
	}
	mux.HandleFunc("GET /status", h)
	mux.HandleFunc("GET /{$}", h)
	// Loopback requests for a loopback host only: no DNS rebinding.
	return loopback.Only(mux)
}

// CheckLoopback returns an error unless addr (host:port) is on a loopback
// address: the status endpoint must not be reachable from the network.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("status address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("status address %q is not a loopback address (use 127.0.0.1)", addr)
	}
	return nil
}
