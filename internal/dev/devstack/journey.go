package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ingest"
)

// trace is what the stack saw of one request.
type trace struct {
	sessionID, orderNo string
	received, deadline time.Time
	state              ceb179.State
	reason             string
	done               time.Time // when customs answered the accepted upload
	final              bool
}

// journey follows the requests this stack received and prints their way
// through the pipeline.
type journey struct {
	w      io.Writer
	store  *dynamo.Store
	window time.Duration

	mu     sync.Mutex
	traces map[string]*trace
	order  []string
}

func newJourney(w io.Writer, store *dynamo.Store, window time.Duration) *journey {
	return &journey{w: w, store: store, window: window, traces: map[string]*trace{}}
}

func (j *journey) printf(format string, args ...any) {
	if j.w != nil {
		fmt.Fprintf(j.w, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
	}
}

// wrap serves platDataOpen through h and starts following each request h
// accepted. Without a writer to print to it returns h itself: following a
// request costs a copy of the answer and reads of its state.
func (j *journey) wrap(h http.Handler) http.Handler {
	if j.w == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, _ := io.ReadAll(io.LimitReader(r.Body, ingest.MaxBodyBytes+1))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		open, err := customs.ParseOpenReq(r.Header.Get("Content-Type"), body)
		var ack customs.Ack
		_ = json.Unmarshal(rec.Body.Bytes(), &ack)
		code := ack.Code
		if err != nil {
			j.printf("✗ platDataOpen refused (%s): %s", code, err)
			return
		}
		j.printf("→ %s  order %s  ack %s in %.1f ms", open.SessionID, open.OrderNo, code, float64(time.Since(start).Microseconds())/1000)
		if code != customs.CodeSuccess {
			return
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		if _, ok := j.traces[open.SessionID]; !ok {
			j.traces[open.SessionID] = &trace{sessionID: open.SessionID, orderNo: open.OrderNo, received: start, deadline: start.Add(j.window), state: ceb179.StateReceived}
			j.order = append(j.order, open.SessionID)
		}
	})
}

// watch polls the state of every request not yet final and prints changes.
func (j *journey) watch(ctx context.Context) error {
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		j.mu.Lock()
		var open []*trace
		for _, id := range j.order {
			if t := j.traces[id]; !t.final {
				open = append(open, t)
			}
		}
		j.mu.Unlock()
		for _, t := range open {
			if ctx.Err() != nil {
				return nil
			}
			j.update(ctx, t)
		}
	}
}

func (j *journey) update(ctx context.Context, t *trace) {
	req, err := j.store.GetRequest(ctx, t.sessionID)
	if err != nil {
		return
	}
	// The check and the change are one step, so a change is printed once
	// even if two reads of it overlap.
	j.mu.Lock()
	if req.State == t.state {
		j.mu.Unlock()
		return
	}
	t.state, t.reason, t.final = req.State, req.Reason, req.State.Final()
	j.mu.Unlock()
	switch {
	case req.State == ceb179.StateAccepted:
		at := time.Now()
		if attempts, err := j.store.ListAttempts(ctx, t.sessionID); err == nil {
			for _, a := range attempts {
				if a.Outcome == ceb179.OutcomeAccepted || a.Outcome == ceb179.OutcomeDuplicate {
					at = a.At.Add(a.Latency)
				}
			}
		}
		j.mu.Lock()
		t.done = at
		j.mu.Unlock()
		when := "on time"
		if at.After(t.deadline) {
			when = "LATE"
		}
		j.printf("✓ %s  order %s  uploaded and accepted by customs %.2f s after the request (%s)", t.sessionID, t.orderNo, at.Sub(t.received).Seconds(), when)
	case req.State.Final():
		j.printf("✗ %s  order %s  %s: %s", t.sessionID, t.orderNo, req.State, req.Reason)
	default:
		j.printf("· %s  %s", t.sessionID, req.State)
	}
}

// Summary counts what became of the requests a stack received.
type Summary struct {
	// Requests is how many requests were answered 10000.
	Requests int
	// ByState counts the requests by their last seen state.
	ByState map[ceb179.State]int
	// OnTime and Late count accepted uploads by whether customs answered
	// before the deadline.
	OnTime, Late int
	// EndToEnd holds the time from request to accepted upload, sorted.
	EndToEnd []time.Duration
}

// Percentile returns the p-th fraction (0..1) of EndToEnd, 0 when empty.
func (s Summary) Percentile(p float64) time.Duration {
	if len(s.EndToEnd) == 0 {
		return 0
	}
	return s.EndToEnd[min(len(s.EndToEnd)-1, int(float64(len(s.EndToEnd))*p))]
}

// String is the summary printed when `ceb179 local` stops.
func (s Summary) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "requests answered 10000: %d\n", s.Requests)
	states := make([]string, 0, len(s.ByState))
	for st := range s.ByState {
		states = append(states, string(st))
	}
	slices.Sort(states)
	for _, st := range states {
		fmt.Fprintf(&b, "  %-9s %d\n", st, s.ByState[ceb179.State(st)])
	}
	fmt.Fprintf(&b, "accepted on time: %d, late: %d", s.OnTime, s.Late)
	if len(s.EndToEnd) > 0 {
		fmt.Fprintf(&b, "; end to end p50 %.2f s, p99 %.2f s", s.Percentile(0.5).Seconds(), s.Percentile(0.99).Seconds())
	}
	b.WriteByte('\n')
	return b.String()
}

func (j *journey) summary() Summary {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := Summary{Requests: len(j.order), ByState: map[ceb179.State]int{}}
	for _, id := range j.order {
		t := j.traces[id]
		s.ByState[t.state]++
		if t.state == ceb179.StateAccepted {
			if t.done.After(t.deadline) {
				s.Late++
			} else {
				s.OnTime++
			}
			s.EndToEnd = append(s.EndToEnd, t.done.Sub(t.received))
		}
	}
	slices.Sort(s.EndToEnd)
	return s
}
