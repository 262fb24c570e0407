// Package awstest is the AWS test bed of ceb179: it starts the embedded AWS
// emulator (package emulator, the same boot `ceb179 local` uses) inside the
// test binary, provisions the tables and queues of template.yaml through
// package infra, and hands out SDK clients pointed at it. Nothing has to be installed or running, and no
// request ever leaves 127.0.0.1.
//
// One emulator serves the whole test binary; every
// call to New provisions a fresh set of resources under a unique name
// prefix, so tests may run in parallel.
//
//	env := awstest.New(t)
//	_, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{
//		TableName: aws.String(env.Table("RequestsTable")), ...})
//	url := env.Queue("AssembleQueue")
package awstest

import (
	"context"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/dev/emulator"
)

// Region is the region every test client uses.
const Region = emulator.Region

// Static credentials the clients sign with; the emulator does not check them.
const (
	// AccessKeyID is the dummy access key ID.
	AccessKeyID = emulator.AccessKeyID
	// SecretAccessKey is the dummy secret access key.
	SecretAccessKey = emulator.SecretAccessKey
)

// UnreachableCustomsURL is the CustomsUploadUrl parameter a test stack gets
// unless the test sets its own: a loopback port nothing listens on, so a
// test can never post to the real customs endpoints.
const UnreachableCustomsURL = "http://127.0.0.1:9/ceb2grab/grab/realTimeDataUpload"

// Env is one test's view of the emulator: clients, and the names and URLs
// of the resources provisioned for it.
type Env struct {
	// Endpoint is the emulator's base URL (http://127.0.0.1:port).
	Endpoint string
	// Region is the clients' region.
	Region string
	// Config is the SDK configuration of the clients: static credentials,
	// the emulator as base endpoint, an HTTP client that dials loopback only.
	Config aws.Config
	// Clients holds the same clients as the three fields below.
	Clients *awsenv.Clients
	// DynamoDB is a DynamoDB client pointed at the emulator.
	DynamoDB *dynamodb.Client
	// SQS is an SQS client pointed at the emulator.
	SQS *sqs.Client
	// Lambda is a Lambda client pointed at the emulator.
	Lambda *lambda.Client
	// Prefix is this test's resource name prefix.
	Prefix string
	// Stack is what was provisioned from the template (nil for Start).
	Stack *infra.Stack
	// Tables maps table logical IDs to table names.
	Tables map[string]string
	// Queues maps queue logical IDs to queue URLs.
	Queues map[string]string
	// Functions maps function logical IDs to the names they run under.
	Functions map[string]string

	tb   testing.TB
	conn *emulator.Conn
}

// Option adjusts New.
type Option func(*options)

type options struct {
	params map[string]string
}

// WithParameters overrides template parameters, for example
// {"CustomsUploadUrl": fakeCustoms.URL + "/ceb2grab/grab/realTimeDataUpload"}.
func WithParameters(p map[string]string) Option {
	return func(o *options) {
		for k, v := range p {
			o.params[k] = v
		}
	}
}

// Endpoint starts the emulator on first use and returns its base URL. It
// fails the test while KUMO_DATA_DIR is set: the emulator would persist test
// data there.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv(emulator.EnvPersist); d != "" {
		tb.Fatalf("awstest: %s=%s is set: the embedded emulator would persist test data there; unset it", emulator.EnvPersist, d)
	}
	return emulator.Endpoint()
}

// Start returns clients for the emulator without provisioning anything.
func Start(tb testing.TB) *Env {
	tb.Helper()
	Endpoint(tb)
	conn := emulator.Connect()
	c := conn.Clients
	return &Env{
		Endpoint:  conn.Endpoint,
		Region:    Region,
		Config:    conn.Config,
		Clients:   c,
		conn:      conn,
		DynamoDB:  c.DynamoDB,
		SQS:       c.SQS,
		Lambda:    c.Lambda,
		Prefix:    NewPrefix(tb),
		Tables:    map[string]string{},
		Queues:    map[string]string{},
		Functions: map[string]string{},
		tb:        tb,
	}
}

// New starts the emulator if needed and provisions template.yaml's tables
// and queues under a prefix unique to this call.
func New(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	o := options{params: map[string]string{"CustomsUploadUrl": UnreachableCustomsURL}}
	for _, f := range opts {
		f(&o)
	}
	e := Start(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stack, err := e.conn.Provision(ctx, e.Prefix, o.params)
	if err != nil {
		tb.Fatalf("awstest: %v", err)
	}
	e.Stack = stack
	e.Tables = stack.Tables
	e.Queues = stack.Queues
	e.Functions = stack.Functions
	return e
}

// Table returns the name of the table with the given logical ID (for
// example "RequestsTable"); an unknown ID fails the test.
func (e *Env) Table(logicalID string) string {
	e.tb.Helper()
	return e.lookup("table", e.Tables, logicalID)
}

// Queue returns the URL of the queue with the given logical ID (for example
// "AssembleQueue"); an unknown ID fails the test.
func (e *Env) Queue(logicalID string) string {
	e.tb.Helper()
	return e.lookup("queue", e.Queues, logicalID)
}

// Function returns the name the function with the given logical ID (for
// example "UploadFunction") runs under; an unknown ID fails the test.
func (e *Env) Function(logicalID string) string {
	e.tb.Helper()
	return e.lookup("function", e.Functions, logicalID)
}

// lookup fails the test on an unknown logical ID.
func (e *Env) lookup(kind string, m map[string]string, id string) string {
	e.tb.Helper()
	v, ok := m[id]
	if !ok {
		e.tb.Fatalf("awstest: no %s %q in the template", kind, id)
	}
	return v
}

// Env returns what a process needs to run against this test bed: every
// variable the template sets on any function (REQUESTS_TABLE,
// PAYMENTS_TABLE, ASSEMBLE_QUEUE_URL, SIGN_QUEUE_URL, CUSTOMS_UPLOAD_URL,
// RETENTION_DAYS), UPLOAD_FUNCTION, and the AWS connection variables of
// AWSEnv.
func (e *Env) Env() map[string]string {
	e.tb.Helper()
	env := e.AWSEnv()
	if e.Stack != nil {
		fe, err := e.Stack.Env()
		if err != nil {
			e.tb.Fatalf("awstest: %v", err)
		}
		maps.Copy(env, fe)
	}
	return env
}

// FunctionEnv returns the environment the template gives one function
// (Globals merged), plus the AWS connection variables of AWSEnv.
func (e *Env) FunctionEnv(logicalID string) map[string]string {
	e.tb.Helper()
	env := e.AWSEnv()
	if e.Stack == nil {
		e.tb.Fatal("awstest: FunctionEnv needs an Env from New")
	}
	fe, err := e.Stack.FunctionEnv(logicalID)
	if err != nil {
		e.tb.Fatalf("awstest: %v", err)
	}
	maps.Copy(env, fe)
	return env
}

// AWSEnv returns the variables that point the SDK (awsenv.Load) at the
// emulator with static credentials, keep it away from shared config files
// and the instance metadata service, and mark the endpoint as an emulator.
func (e *Env) AWSEnv() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":            e.Endpoint,
		"AWS_REGION":                  e.Region,
		"AWS_DEFAULT_REGION":          e.Region,
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		awsenv.EnvEmulator:            "1",
	}
}

// Setenv sets every variable of Env for the rest of the test (tb.Setenv),
// so code that calls awsenv.Load in-process reaches the emulator. Like
// tb.Setenv it cannot be used in parallel tests.
func (e *Env) Setenv(tb testing.TB) {
	tb.Helper()
	for k, v := range e.Env() {
		tb.Setenv(k, v)
	}
	for _, svc := range []string{"DYNAMODB", "SQS", "LAMBDA", "STS"} {
		tb.Setenv("AWS_ENDPOINT_URL_"+svc, e.Endpoint)
	}
}

// Config returns the emulator's loopback-only SDK configuration for
// endpoint (emulator.Config).
func Config(endpoint string) aws.Config { return emulator.Config(endpoint) }

// NewPrefix returns a resource name prefix unique in this process, built
// from the test's name, for example "t3f9a-12-TestIngestOk-".
func NewPrefix(tb testing.TB) string { return emulator.NewPrefix(tb.Name()) }
