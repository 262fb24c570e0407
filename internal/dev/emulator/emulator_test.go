package emulator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr string
		ok   bool
	}{
		{"ok IPv4 loopback", "127.0.0.1:4566", true},
		{"ok IPv6 loopback", "[::1]:4566", true},
		{"ok localhost", "localhost:4566", true},
		{"fail public address", "192.0.2.1:443", false},
		{"fail AWS host name", "dynamodb.us-east-1.amazonaws.com:443", false},
		{"fail no port", "127.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLoopback(tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("checkLoopback(%q) = %v, want ok %t", tc.addr, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("err = %v, want ErrNotLoopback", err)
			}
		})
	}
}

func TestNewPrefixIsUniqueAndSafe(t *testing.T) {
	t.Parallel()
	a, b := NewPrefix("TestX/sub case"), NewPrefix("TestX/sub case")
	if a == b {
		t.Fatalf("two prefixes are equal: %q", a)
	}
	if strings.ContainsAny(a, "/ ") || !strings.HasSuffix(a, "-TestXsubcase-") {
		t.Fatalf("prefix %q keeps unsafe characters or loses the name", a)
	}
}

func TestConnectProvisionsTheTemplate(t *testing.T) {
	conn, again := Connect(), Connect()
	if again.Endpoint != conn.Endpoint {
		t.Fatalf("second Connect reached %s; want the same emulator %s", again.Endpoint, conn.Endpoint)
	}
	if !strings.HasPrefix(conn.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q is not on loopback", conn.Endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := NewPrefix(t.Name())
	stack, err := conn.Provision(ctx, prefix, map[string]string{"CustomsUploadUrl": "http://127.0.0.1:9/up"})
	if err != nil {
		t.Fatal(err)
	}
	if got := stack.Tables["RequestsTable"]; !strings.HasPrefix(got, prefix) {
		t.Fatalf("RequestsTable = %q, want prefix %q", got, prefix)
	}
	if got := stack.Queues["SignQueue"]; !strings.HasSuffix(got, "/"+prefix+"SignQueue") {
		t.Fatalf("SignQueue = %q, want a queue named %sSignQueue", got, prefix)
	}
}
