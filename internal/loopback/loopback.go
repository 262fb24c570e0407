// Package loopback guards the operators' web endpoints (the status page of
// `ceb179 local` and `ceb179 status --serve`, hsmbridge's status endpoint):
// they answer only requests that arrived on a loopback address and name a
// loopback host. The first keeps them off the network even when their
// listener is on every interface; the second defeats DNS rebinding, where a
// web page the operator visits reaches 127.0.0.1 under a name of its own.
package loopback

import (
	"net"
	"net/http"
	"strings"
)

// Only wraps h so that it answers 403 to a request that did not arrive on
// a loopback address or whose Host is not a loopback host.
func Only(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Request(r) {
			http.Error(w, "forbidden: this endpoint answers loopback requests for a loopback host only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Request reports whether r arrived on a loopback address (when the server
// recorded it) and names a loopback host.
func Request(r *http.Request) bool {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if tcp, ok := a.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			return false
		}
	}
	return Host(r.Host)
}

// Host reports whether host (a Host header: name or IP, with or without a
// port) is localhost or a loopback IP address.
func Host(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
