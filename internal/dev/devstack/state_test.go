package devstack_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/devstack"
)

func TestWriteRead(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := devstack.ReadState(dir); !errors.Is(err, devstack.ErrNotRunning) {
		t.Fatalf("Read before Write = %v, want ErrNotRunning", err)
	}
	want := devstack.Published{
		Endpoint: "http://127.0.0.1:4566", Region: "us-east-1",
		Tables: devstack.PublishedTables{Requests: "r", Payments: "p"},
		Queues: devstack.PublishedQueues{Assemble: "http://127.0.0.1:4566/0/a", Sign: "http://127.0.0.1:4566/0/s"},
		PID:    42, StartedAt: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
	}
	if err := devstack.WriteState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := devstack.ReadState(dir)
	want.Version = devstack.StateVersion
	if err != nil || got != want {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}
	if err := devstack.RemoveState(dir); err != nil {
		t.Fatal(err)
	}
	if err := devstack.RemoveState(dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if got := devstack.StatePath(""); got != filepath.Join(".ceb179", "stack.json") {
		t.Errorf("default path %s", got)
	}
}

func TestReadRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want string
	}{
		{name: "fail not loopback", file: `{"version":1,"endpoint":"https://dynamodb.cn-north-1.amazonaws.com.cn","region":"cn-north-1"}`, want: "not on loopback"},
		{name: "fail wrong version", file: `{"version":2,"endpoint":"http://127.0.0.1:1","region":"x"}`, want: "version 2"},
		{name: "fail no region", file: `{"version":1,"endpoint":"http://localhost:1"}`, want: "region missing"},
		{name: "fail not JSON", file: `stack`, want: "not a stack file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(devstack.StatePath(dir), []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := devstack.ReadState(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read = %v, want %q", err, tt.want)
			}
		})
	}
}
