package localenv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/localenv"
)

func TestWriteRead(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := localenv.Read(dir); !errors.Is(err, localenv.ErrNotRunning) {
		t.Fatalf("Read before Write = %v, want ErrNotRunning", err)
	}
	want := localenv.Stack{
		Endpoint: "http://127.0.0.1:4566", Region: "us-east-1",
		Tables: localenv.Tables{Requests: "r", Payments: "p"},
		Queues: localenv.Queues{Assemble: "http://127.0.0.1:4566/0/a", Sign: "http://127.0.0.1:4566/0/s"},
		PID:    42, StartedAt: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
	}
	if err := localenv.Write(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := localenv.Read(dir)
	want.Version = localenv.Version
	if err != nil || got != want {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}
	if err := localenv.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := localenv.Remove(dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if got := localenv.Path(""); got != filepath.Join(".ceb179", "stack.json") {
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
			if err := os.WriteFile(localenv.Path(dir), []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := localenv.Read(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read = %v, want %q", err, tt.want)
			}
		})
	}
}
