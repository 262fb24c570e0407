package devstack

// The state file is how a running `ceb179 local` publishes its stack (the
// AWS endpoint on loopback, the table names and queue URLs) to the other
// commands, such as `ceb179 import --local`. It is <data dir>/stack.json
// (data dir default ./.ceb179); its format is documented in
// docs/architecture.md. `ceb179 local` writes it when its stack is up
// (WriteState) and removes it when it stops (RemoveState).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DefaultDir is the default data directory of `ceb179 local`.
const DefaultDir = ".ceb179"

// StateFile is the name of the published file inside the data directory.
const StateFile = "stack.json"

// StateVersion is the format version this package writes and reads.
const StateVersion = 1

// ErrNotRunning is returned by Read when no stack is published in the data
// directory.
var ErrNotRunning = errors.New("no local stack published (is `ceb179 local` running?)")

// Published is what a running local stack publishes.
type Published struct {
	// Version is the format version, StateVersion.
	Version int `json:"version"`
	// Endpoint is the AWS endpoint URL of the emulator, on loopback
	// (AWS_ENDPOINT_URL for every service).
	Endpoint string `json:"endpoint"`
	// Region is the AWS region the emulator answers for.
	Region string `json:"region"`
	// Tables are the table names by role.
	Tables PublishedTables `json:"tables"`
	// Queues are the queue URLs by role.
	Queues PublishedQueues `json:"queues"`
	// PlatDataOpenURL is the local URL customs' calls are sent to, if served.
	PlatDataOpenURL string `json:"platDataOpenURL,omitempty"`
	// PaymentsURL is the local URL of POST /payments, if served.
	PaymentsURL string `json:"paymentsURL,omitempty"`
	// PID is the process id of `ceb179 local`.
	PID int `json:"pid"`
	// StartedAt is when the stack came up.
	StartedAt time.Time `json:"startedAt"`
	// NotifySecretARN is the emulator's secret holding the robots of
	// --notify-config, if any (`ceb179 notify test --local` reads it).
	NotifySecretARN string `json:"notifySecretArn,omitempty"`
}

// PublishedTables names the local tables.
type PublishedTables struct {
	// Requests is REQUESTS_TABLE.
	Requests string `json:"requests"`
	// Payments is PAYMENTS_TABLE.
	Payments string `json:"payments"`
}

// PublishedQueues holds the local queue URLs.
type PublishedQueues struct {
	// Assemble is ASSEMBLE_QUEUE_URL.
	Assemble string `json:"assemble"`
	// Sign is SIGN_QUEUE_URL.
	Sign string `json:"sign"`
}

// StatePath returns the file's path in data directory dir ("" means DefaultDir).
func StatePath(dir string) string {
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, StateFile)
}

// ReadState returns the stack published in dir ("" means DefaultDir). It
// returns an error wrapping ErrNotRunning when there is none, and refuses a
// file whose endpoint is not a loopback URL: a local stack never sends
// anything off this machine.
func ReadState(dir string) (Published, error) {
	p := StatePath(dir)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Published{}, fmt.Errorf("%s: %w", p, ErrNotRunning)
	}
	if err != nil {
		return Published{}, err
	}
	var s Published
	if err := json.Unmarshal(b, &s); err != nil {
		return Published{}, fmt.Errorf("%s: not a stack file: %w", p, err)
	}
	if err := s.check(); err != nil {
		return Published{}, fmt.Errorf("%s: %w", p, err)
	}
	return s, nil
}

// WriteState publishes s in dir ("" means DefaultDir), creating the directory,
// and replacing any earlier file atomically.
func WriteState(dir string, s Published) error {
	if s.Version == 0 {
		s.Version = StateVersion
	}
	if err := s.check(); err != nil {
		return err
	}
	p := StatePath(dir)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), StateFile+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// RemoveState withdraws the stack published in dir; a missing file is fine.
func RemoveState(dir string) error {
	err := os.Remove(StatePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s Published) check() error {
	if s.Version != StateVersion {
		return fmt.Errorf("stack file version %d, want %d", s.Version, StateVersion)
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" {
		return errors.New("stack file: endpoint is not a URL")
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("stack file: endpoint is not on loopback")
	}
	if s.Region == "" {
		return errors.New("stack file: region missing")
	}
	return nil
}
