package ingest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

func TestWindow(t *testing.T) {
	now := time.UnixMilli(1700000000000)
	tests := []struct {
		name string
		opts []Option
		want time.Duration
	}{
		{"ok default is two minutes", nil, ceb179.Window},
		{"ok compressed for a benchmark", []Option{WithWindow(5 * time.Second)}, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, q := newMemStore(), &memQueue{}
			opts := append([]Option{WithClock(func() time.Time { return now }), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, tt.opts...)
			h := New(store, q, opts...)
			r := httptest.NewRequest("POST", Path, strings.NewReader(`{"orderNo":"O","sessionID":"S","serviceTime":1}`))
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got := store.reqs["S"].Deadline; !got.Equal(now.Add(tt.want)) {
				t.Fatalf("deadline %v, want %v", got, now.Add(tt.want))
			}
			if got := q.msgs[0].(ceb179.AssembleMessage).Deadline; got != now.Add(tt.want).UnixMilli() {
				t.Fatalf("queued deadline %d", got)
			}
		})
	}
}
