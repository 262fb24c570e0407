package assemble

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		receive int
		left    time.Duration
		want    time.Duration
	}{
		{name: "ok first retry after a second", receive: 1, left: 119 * time.Second, want: time.Second},
		{name: "ok doubling", receive: 3, left: 100 * time.Second, want: 4 * time.Second},
		{name: "ok capped", receive: 9, left: 100 * time.Second, want: MaxRetryDelay},
		{name: "ok never past the deadline", receive: 9, left: 3500 * time.Millisecond, want: 4 * time.Second},
		{name: "ok at least a second", receive: 1, left: 10 * time.Millisecond, want: time.Second},
		{name: "ok last receive waits for the deadline", receive: MaxReceives - 1, left: 50 * time.Second, want: 50 * time.Second},
		{name: "ok unknown receive count", receive: 0, left: time.Minute, want: MaxRetryDelay},
	}
	for _, tt := range tests {
		if got := retryDelay(tt.receive, tt.left); got != tt.want {
			t.Errorf("%s: retryDelay(%d, %v) = %v, want %v", tt.name, tt.receive, tt.left, got, tt.want)
		}
	}
	// The whole schedule fits the window within MaxReceives receives.
	at, n := time.Duration(0), 1
	for ; at < 120*time.Second; n++ {
		at += retryDelay(n, 120*time.Second-at)
	}
	if n > MaxReceives {
		t.Errorf("the deadline is reached on receive %d, beyond %d", n, MaxReceives)
	}
}

func TestGUID(t *testing.T) {
	t.Parallel()
	a := GUID("fe2374-8fnejf97-32839218", "2019030422001434180520096410")
	if a != GUID("fe2374-8fnejf97-32839218", "2019030422001434180520096410") {
		t.Error("not deterministic")
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 || a != strings.ToUpper(a) || len(a) != 36 {
		t.Errorf("guid %s: %v version %d", a, err, u.Version())
	}
	for _, other := range []string{
		GUID("fe2374-8fnejf97-32839219", "2019030422001434180520096410"),
		GUID("fe2374-8fnejf97-32839218", "2019030422001434180520096411"),
		GUID("fe2374-8fnejf97-32839218\n2019030422001434180520096410", ""),
	} {
		if other == a {
			t.Errorf("collision %s", other)
		}
	}
}
