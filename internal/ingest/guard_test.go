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

func TestDailyCap(t *testing.T) {
	const limit = 3
	s := newStack(t)
	// 2026-11-27 23:59:00 China time; a minute later is the next China day.
	s.now = time.Date(2026, 11, 27, 15, 59, 0, 0, time.UTC)
	s.opts = []Option{WithDailyCap(s.store, limit)}
	s.serve(t, s.store, s.queue)
	ctx := context.Background()

	for i := 1; i <= limit; i++ {
		status, ack, _ := s.post(t, formType, openFor("CAP-ORDER", fmt.Sprintf("CAP-%d", i)))
		if status != http.StatusOK || ack.Code != customs.CodeSuccess {
			t.Fatalf("request %d: answer %d %+v", i, status, ack)
		}
	}
	if msgs := s.drain(t); len(msgs) != limit {
		t.Fatalf("queued %d requests under the cap, want %d", len(msgs), limit)
	}

	// The (N+1)-th request of the day: answered 10000, recorded CAPPED,
	// counted, not queued (so no sign job can follow).
	status, ack, hdr := s.post(t, formType, openFor("CAP-ORDER", "CAP-OVER"))
	if status != http.StatusOK || ack.Code != customs.CodeSuccess {
		t.Fatalf("over the cap: answer %d %+v, want 200 10000", status, ack)
	}
	if ct := hdr.Get("Content-Type"); ct != customs.AckContentType {
		t.Errorf("Content-Type %q, want %q", ct, customs.AckContentType)
	}
	got, err := s.store.GetRequest(ctx, "CAP-OVER")
	if err != nil {
		t.Fatalf("capped request not recorded: %v", err)
	}
	if got.State != ceb179.StateCapped || got.Enqueued || got.Reason == "" {
		t.Fatalf("capped request recorded %+v, want CAPPED, not enqueued, with a reason", got)
	}
	if msgs := s.drain(t); len(msgs) != 0 {
		t.Fatalf("queued %v for a request over the cap", msgs)
	}
	if n := s.metrics.Total(MetricCapped); n != 1 {
		t.Errorf("Capped metric = %v, want 1", n)
	}

	// Customs repeating the capped sessionID is answered and still not queued.
	if status, ack, _ := s.post(t, formType, openFor("CAP-ORDER", "CAP-OVER")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("repeated capped session: %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 0 {
		t.Fatalf("queued %v for a repeated capped session", msgs)
	}
	// Another order is not affected.
	if status, ack, _ := s.post(t, formType, openFor("OTHER-ORDER", "OTHER-1")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("other order: %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 1 {
		t.Fatalf("queued %d for another order, want 1", len(msgs))
	}

	// A new China calendar day starts the count again.
	s.now = s.now.Add(time.Minute)
	if status, ack, _ := s.post(t, formType, openFor("CAP-ORDER", "CAP-NEXT-DAY")); status != 200 || ack.Code != customs.CodeSuccess {
		t.Fatalf("next day: %d %+v", status, ack)
	}
	if msgs := s.drain(t); len(msgs) != 1 || msgs[0].SessionID != "CAP-NEXT-DAY" {
		t.Fatalf("next day queued %v, want CAP-NEXT-DAY", msgs)
	}
	if n := s.metrics.Total(MetricCapped); n != 1 {
		t.Errorf("Capped metric = %v after the new day, want still 1", n)
	}
}

// brokenCaps fails the count or the record of a capped request.
type brokenCaps struct {
	CapStore
	failCount, failSet bool
}

func (b brokenCaps) CountOrderRequest(ctx context.Context, orderNo string, at time.Time) (int, error) {
	if b.failCount {
		return 0, errors.New("counter table unreachable")
	}
	return b.CapStore.CountOrderRequest(ctx, orderNo, at)
}

func (b brokenCaps) SetState(ctx context.Context, id string, to ceb179.State, reason string, from ...ceb179.State) error {
	if b.failSet {
		return errors.New("requests table unreachable")
	}
	return b.CapStore.SetState(ctx, id, to, reason, from...)
}

// TestDailyCapFailsOpen: when the cap cannot be checked or recorded, the
// request is signed as usual: a lost customs request fails the audit, an
// extra signature does not.
func TestDailyCapFailsOpen(t *testing.T) {
	tests := []struct {
		name string
		caps brokenCaps
	}{
		{"fail count unreachable", brokenCaps{failCount: true}},
		{"fail capped state not recorded", brokenCaps{failSet: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			caps := tt.caps
			caps.CapStore = s.store
			s.opts = []Option{WithDailyCap(caps, 1)}
			s.serve(t, s.store, s.queue)
			for i := range 2 {
				if status, ack, _ := s.post(t, formType, openFor("ORDER", fmt.Sprintf("S-%d", i))); status != 200 || ack.Code != customs.CodeSuccess {
					t.Fatalf("request %d: %d %+v", i, status, ack)
				}
			}
			if msgs := s.drain(t); len(msgs) != 2 {
				t.Fatalf("queued %d, want both requests queued", len(msgs))
			}
			if n := s.metrics.Total(MetricCapFailure); n < 1 {
				t.Errorf("CapFailure metric = %v, want at least 1", n)
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
