package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
)

// openFor is an openReq form for orderNo under sessionID.
func openFor(orderNo, sessionID string) string {
	return form(fmt.Sprintf(`{"orderNo":%q,"sessionID":%q,"serviceTime":1}`, orderNo, sessionID))
}

// TestDailyCap: past its order's daily cap a request is still recorded,
// answered 10000 and queued, with the low priority its sign job carries;
// it is counted once however often customs repeats it.
func TestDailyCap(t *testing.T) {
	const limit = 3
	s := newStack(t)
	// 2026-11-27 23:59:00 China time; a minute later is the next China day.
	s.now = time.Date(2026, 11, 27, 15, 59, 0, 0, time.UTC)
	s.opts = []Option{WithDailyCap(s.store, limit)}
	s.serve(t, s.store, s.queue)
	ctx := context.Background()

	for i := 1; i <= limit+2; i++ {
		status, ack, hdr := s.post(t, formType, openFor("CAP-ORDER", fmt.Sprintf("CAP-%d", i)))
		if status != http.StatusOK || ack.Code != customs.CodeSuccess {
			t.Fatalf("request %d: answer %d %+v, want 200 10000", i, status, ack)
		}
		if ct := hdr.Get("Content-Type"); ct != customs.AckContentType {
			t.Errorf("Content-Type %q, want %q", ct, customs.AckContentType)
		}
	}
	msgs := s.drain(t)
	if len(msgs) != limit+2 {
		t.Fatalf("queued %d requests, want all %d: over the cap is never dropped", len(msgs), limit+2)
	}
	for _, m := range msgs {
		want := ceb179.PriorityNormal
		if m.SessionID == "CAP-4" || m.SessionID == "CAP-5" {
			want = ceb179.PriorityLow
		}
		if m.Priority != want {
			t.Errorf("%s queued with priority %s, want %s", m.SessionID, m.Priority, want)
		}
		got, err := s.store.GetRequest(ctx, m.SessionID)
		if err != nil || got.State != ceb179.StateReceived || !got.Enqueued || got.Priority != want {
			t.Errorf("%s recorded %+v, %v; want RECEIVED, enqueued, priority %s", m.SessionID, got, err, want)
		}
	}
	if n := s.metrics.Total(MetricCapped); n != 2 {
		t.Errorf("Capped metric = %v, want 2", n)
	}

	// Customs repeating a sessionID over the cap is answered and counted
	// once: not queued again, and the cap does not move.
	if status, ack, _ := s.post(t, formType, openFor("CAP-ORDER", "CAP-5")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("repeated session: %d %+v", status, ack)
	}
	// A sessionID within the cap, repeated, stays within.
	if status, ack, _ := s.post(t, formType, openFor("CAP-ORDER", "CAP-2")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("repeated session: %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 0 {
		t.Fatalf("queued %v for repeated sessions", msgs)
	}
	if within, err := s.store.CountOrderRequest(ctx, "CAP-ORDER", "CAP-2", s.now, limit); err != nil || !within {
		t.Errorf("CAP-2 counted again: within %v, %v", within, err)
	}
	if n := s.metrics.Total(MetricCapped); n != 2 {
		t.Errorf("Capped metric = %v after the repeats, want still 2", n)
	}
	// Another order is not affected.
	if status, ack, _ := s.post(t, formType, openFor("OTHER-ORDER", "OTHER-1")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("other order: %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 1 || msgs[0].Priority != ceb179.PriorityNormal {
		t.Fatalf("another order queued %v, want one at normal priority", msgs)
	}

	// A new China calendar day starts the count again.
	s.now = s.now.Add(time.Minute)
	if status, ack, _ := s.post(t, formType, openFor("CAP-ORDER", "CAP-NEXT-DAY")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("next day: %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 1 || msgs[0].SessionID != "CAP-NEXT-DAY" || msgs[0].Priority != ceb179.PriorityNormal {
		t.Fatalf("next day queued %v, want CAP-NEXT-DAY at normal priority", msgs)
	}
}

// brokenCaps fails the count.
type brokenCaps struct{ CapStore }

func (brokenCaps) CountOrderRequest(context.Context, string, string, time.Time, int) (bool, error) {
	return false, errors.New("counter table unreachable")
}

// TestDailyCapNormalPriority: a caller on the allowlist is never capped;
// and when the cap cannot be checked, the request is signed with the
// normal priority (a customs request held back might be late, an extra
// normal signature costs little).
func TestDailyCapNormalPriority(t *testing.T) {
	tests := []struct {
		name        string
		opts        func(s *stack) []Option
		wantFailure float64
	}{
		{"ok a caller on the allowlist is never capped", func(s *stack) []Option {
			return []Option{WithDailyCap(s.store, 2), WithAllowlist([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})}
		}, 0},
		{"ok a count that fails signs as under the cap", func(s *stack) []Option {
			return []Option{WithDailyCap(brokenCaps{s.store}, 1)}
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			s.opts = tt.opts(s)
			s.serve(t, s.store, s.queue)
			for i := range 5 {
				if status, ack, _ := s.post(t, formType, openFor("ORDER", fmt.Sprintf("S-%d", i))); status != 200 || ack.Code != customs.CodeSuccess {
					t.Fatalf("request %d: %d %+v", i, status, ack)
				}
			}
			msgs := s.drain(t)
			if len(msgs) != 5 {
				t.Fatalf("queued %d, want 5", len(msgs))
			}
			for _, m := range msgs {
				if m.Priority != ceb179.PriorityNormal {
					t.Errorf("%s queued with priority %s, want normal", m.SessionID, m.Priority)
				}
			}
			if n := s.metrics.Total(MetricCapFailure); n != tt.wantFailure {
				t.Errorf("CapFailure metric = %v, want %v", n, tt.wantFailure)
			}
			if n := s.metrics.Total(MetricCapped); n != 0 {
				t.Errorf("Capped metric = %v, want 0", n)
			}
		})
	}
}

func TestAllowlist(t *testing.T) {
	body := openFor("ALLOW-ORDER", "ALLOW-1")
	tests := []struct {
		name       string
		allow      []string
		forwarded  string
		wantStatus int
		wantCode   string
	}{
		{"ok no allowlist lets everyone call", nil, "", 200, customs.CodeSuccess},
		{"ok caller inside the allowlist", []string{"203.0.113.0/24", "127.0.0.1/32"}, "", 200, customs.CodeSuccess},
		{"fail caller outside the allowlist", []string{"203.0.113.0/24"}, "", 403, CodeSourceRefused},
		{"fail forged X-Forwarded-For does not pass", []string{"203.0.113.0/24"}, "203.0.113.7", 403, CodeSourceRefused},
		{"fail forged chain does not pass", []string{"203.0.113.0/24"}, "203.0.113.7, 203.0.113.8", 403, CodeSourceRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			var nets []netip.Prefix
			for _, c := range tt.allow {
				nets = append(nets, netip.MustParsePrefix(c))
			}
			s.opts = []Option{WithAllowlist(nets)}
			s.serve(t, s.store, s.queue)
			req, err := http.NewRequest(http.MethodPost, s.srv.URL+Path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", formType)
			req.Header.Set("User-Agent", "Apache-HttpClient/4.5.13 (Java/1.8.0_202)")
			if tt.forwarded != "" {
				req.Header.Set("X-Forwarded-For", tt.forwarded)
			}
			status, ack, hdr := send(t, req)
			if status != tt.wantStatus || ack.Code != tt.wantCode {
				t.Fatalf("answer %d %+v, want %d %s", status, ack, tt.wantStatus, tt.wantCode)
			}
			if ct := hdr.Get("Content-Type"); ct != customs.AckContentType {
				t.Errorf("Content-Type %q, want %q", ct, customs.AckContentType)
			}
			refused := tt.wantCode == CodeSourceRefused
			if n := s.metrics.Total(MetricRefused); (n == 1) != refused {
				t.Errorf("Refused metric = %v", n)
			}
			_, err = s.store.GetRequest(context.Background(), "ALLOW-1")
			if refused && err == nil {
				t.Error("a refused caller's request was recorded")
			}
			if msgs := s.drain(t); (len(msgs) == 0) != refused {
				t.Errorf("queued %d messages", len(msgs))
			}
		})
	}
}
