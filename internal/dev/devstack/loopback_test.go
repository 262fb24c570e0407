package devstack

import (
	"net"
	"net/http"
	"net/url"
	"testing"
)

// TestStatusOnLoopbackOnly listens on every interface, as `ceb179 local
// --listen 0.0.0.0:P` does: platDataOpen and /healthz answer on every
// address, the status page and its trails only on loopback, and only for a
// loopback Host.
func TestStatusOnLoopbackOnly(t *testing.T) {
	var other net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			other = n.IP
			break
		}
	}
	s := startStack(t, Options{Listen: "0.0.0.0:0", SettleEvery: -1})
	u, _ := url.Parse(s.URL)
	port := u.Port()
	get := func(host, path, hostHeader string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
		if hostHeader != "" {
			req.Host = hostHeader
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("127.0.0.1", "/status", ""); c != http.StatusOK {
		t.Errorf("loopback /status: %d", c)
	}
	if c := get("127.0.0.1", "/status/trail/NOPE", "rebind.evil.example"); c != http.StatusForbidden {
		t.Errorf("foreign Host trail: %d, want 403", c)
	}
	if other == nil {
		t.Skip("no non-loopback IPv4 address on this machine")
	}
	if c := get(other.String(), "/healthz", ""); c != http.StatusOK {
		t.Errorf("/healthz on %s: %d", other, c)
	}
	for _, h := range []string{"", "127.0.0.1"} {
		if c := get(other.String(), "/status", h); c != http.StatusForbidden {
			t.Errorf("/status on %s (Host %q): %d, want 403", other, h, c)
		}
	}
}
