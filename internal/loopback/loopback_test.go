package loopback

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHost(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8080", true}, {"127.0.0.1", true}, {"localhost:8080", true}, {"LOCALHOST", true},
		{"[::1]:8080", true}, {"::1", true}, {"127.8.9.10:1", true},
		{"evil.example:8080", false}, {"evil.example", false}, {"127.0.0.1.evil.example", false},
		{"192.0.2.1:8080", false}, {"0.0.0.0:8080", false}, {"", false}, {"localhost.evil.example", false},
	} {
		if got := Host(tt.host); got != tt.want {
			t.Errorf("Host(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestOnly(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "secret") })
	srv := httptest.NewServer(Only(ok))
	defer srv.Close()
	for _, tt := range []struct {
		name, host string
		want       int
	}{
		{"ok loopback host", "", http.StatusOK},
		{"ok localhost", "localhost", http.StatusOK},
		{"fail rebinding name", "rebind.evil.example", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	// A request that arrived on another interface is refused whatever its Host.
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	req = req.WithContext(contextWithLocal(req, &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8080}))
	rec := httptest.NewRecorder()
	Only(ok).ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("request on a non-loopback address: %d, want 403", rec.Code)
	}
}

func contextWithLocal(r *http.Request, a net.Addr) context.Context {
	return context.WithValue(r.Context(), http.LocalAddrContextKey, a)
}
