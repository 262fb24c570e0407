// Package emulator boots the embedded AWS emulator (github.com/sivchari/kumo)
// of ceb179's development tooling, once per process, and provisions
// template.yaml on it through package infra. `ceb179 local` (package
// devstack) and the test bed (package awstest) both boot it here.
//
// Clients made from Config reach the emulator only: static credentials, no
// proxy, and a dialer that refuses every address but loopback. Every
// provisioned stack lives under its own name prefix (NewPrefix), so several
// stacks share one emulator without meeting.
package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/sivchari/kumo"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/awsenv"
)

// Region is the region every emulator client uses.
const Region = "us-east-1"

// Static credentials the clients sign with; the emulator does not check them.
const (
	// AccessKeyID is the dummy access key ID.
	AccessKeyID = "AKIDCEB179EMULATOR"
	// SecretAccessKey is the dummy secret access key.
	SecretAccessKey = "ceb179-emulator-secret"
)

// EnvPersist names the variable that makes the emulator keep its state in
// a directory, read once when the process starts. `ceb179 local --data`
// sets it; the test bed refuses to run with it set.
const EnvPersist = "KUMO_DATA_DIR"

// server is the emulator of this process. The emulator keeps its state in
// package-level variables, so a second one would share it anyway.
var server struct {
	once sync.Once
	url  string
}

// Endpoint starts the emulator on first use and returns its base URL
// (http://127.0.0.1:port).
func Endpoint() string {
	server.once.Do(func() {
		// Never closed: it lives as long as the process, and closing it
		// would fail Runtime API pollers still connected to it.
		server.url = kumo.NewServer().URL
	})
	return server.url
}

// Conn is a connection to the emulator: its URL and clients.
type Conn struct {
	// Endpoint is the emulator's base URL.
	Endpoint string
	// Config is the SDK configuration of Clients (see Config).
	Config aws.Config
	// Clients are the SDK clients, marked as talking to an emulator.
	Clients *awsenv.Clients
}

// Connect starts the emulator if needed and returns clients for it.
func Connect() *Conn {
	endpoint := Endpoint()
	cfg := Config(endpoint)
	return &Conn{Endpoint: endpoint, Config: cfg, Clients: awsenv.New(cfg, awsenv.WithEmulator())}
}

// Provision creates template.yaml's tables and queues (and records its
// functions) under prefix, with the given template parameters.
func (c *Conn) Provision(ctx context.Context, prefix string, params map[string]string) (*infra.Stack, error) {
	tpl, err := infra.Parse(ceb179.Template)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	stack, err := infra.Provision(ctx, tpl, c.Clients, infra.Options{Prefix: prefix, Parameters: params})
	if err != nil {
		return nil, fmt.Errorf("provision from template.yaml: %w", err)
	}
	return stack, nil
}

// Config returns an SDK configuration for endpoint that reads nothing from
// the environment or shared files: fixed region, static credentials, and an
// HTTP client that uses no proxy and refuses to dial anything but loopback
// addresses.
func Config(endpoint string) aws.Config {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		d := &net.Dialer{Timeout: 5 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if err := checkLoopback(addr); err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, addr)
		}
	})
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   httpClient,
	}
}

// ErrNotLoopback is returned for a dial to anything but a loopback address.
var ErrNotLoopback = errors.New("emulator: refusing to dial a non-loopback address")

// checkLoopback accepts only host:port addresses on a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNotLoopback, addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotLoopback, addr)
}

// sequence numbers the prefixes handed out by this process.
var sequence atomic.Int64

// processToken tells the prefixes of this process from any other's.
var processToken = func() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// unsafeName matches what may not appear in a resource name.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// NewPrefix returns a resource name prefix unique in this process, built
// from name (a test's name, say), for example "t3f9a-12-TestIngestOk-".
func NewPrefix(name string) string {
	name = unsafeName.ReplaceAllString(name, "")
	if len(name) > 24 {
		name = name[:24]
	}
	return fmt.Sprintf("t%s-%d-%s-", processToken, sequence.Add(1), name)
}
