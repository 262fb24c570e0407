package bridge

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/loopback"
)

// Status returns the bridge's current state.
func (b *Bridge) Status() ceb179.SignerHealth {
	st := ceb179.SignerHealth{Time: time.Now(), Policy: b.o.Policy.String(), MaxBacklog: b.o.MaxBacklog}
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
		ss := ceb179.SignerStatus{
			Name: m.spec.Name, EbpCode: m.spec.EbpCode, State: stateText(m.state, m.reason),
			Concurrency: m.slots, Signs: m.signs, Failures: m.failures,
			EstimateMs: m.est.Milliseconds(), LastError: m.lastErr,
		}
		if m.s != nil {
			ss.CertNo = m.s.CertNo()
			if c := m.s.Certificate(); c != nil {
				ss.CertNotAfter = c.NotAfter
			}
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
