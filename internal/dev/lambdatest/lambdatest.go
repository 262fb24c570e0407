package lambdatest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	lambdaruntime "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/dev/awstest"
)

// startTimeout bounds how long a runtime may take to poll for its first
// invocation (Lambda's init phase allows 10 s; a test machine under load
// gets more).
const startTimeout = 60 * time.Second

// maxRestarts bounds how often a crashed function process is started again
// during one test.
const maxRestarts = 20

// Function is a Lambda function running against the emulator: its runtime
// polls the emulator's Runtime API, and Invoke goes through the Lambda
// Invoke API.
type Function struct {
	// Name is the function's name in the emulator.
	Name string
	// LogicalID is the function's logical ID in template.yaml.
	LogicalID string
	// Env is the environment the function runs with (for a handler started
	// in-process, the environment it would have).
	Env map[string]string
	// Init is, for a function started by StartBinary, the time from starting
	// its first process to its first poll of the Runtime API: Lambda's init
	// phase, as this machine runs it.
	Init time.Duration

	env   *awstest.Env
	spec  infra.FunctionSpec
	state *runtimeState
	logs  *syncBuffer
	tb    testing.TB
}

// Option adjusts how a function is started.
type Option func(*options)

type options struct {
	env        map[string]string
	executable string
}

// WithEnv adds environment variables, or replaces the template's (for
// example CUSTOMS_UPLOAD_URL of a fake customs server).
func WithEnv(vars map[string]string) Option {
	return func(o *options) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		maps.Copy(o.env, vars)
	}
}

// WithExecutable runs an already built executable instead of building the
// function's CodeUri package.
func WithExecutable(path string) Option {
	return func(o *options) { o.executable = path }
}

// StartBinary builds the function's package (its CodeUri in template.yaml)
// for this machine, creates the function in the emulator with the
// template's timeout, memory size and environment, and runs the executable
// as Lambda runs a `bootstrap`: in its own directory, with the standard
// Lambda variables and AWS_LAMBDA_RUNTIME_API pointing at the emulator. It
// returns once the runtime polls for its first invocation. A process that
// exits is started again, and the invocation it held fails with
// Runtime.ExitError. The process is killed when the test ends; its output
// is logged if the test failed.
func StartBinary(tb testing.TB, env *awstest.Env, logicalID string, opts ...Option) *Function {
	tb.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	f := newFunction(tb, env, logicalID, o)
	exe := o.executable
	if exe == "" {
		pkg := "./" + strings.TrimSuffix(f.spec.CodeURI, "/")
		exe = Build(tb, "", "", pkg)[pkg]
	}
	p := &process{
		f: f, exe: exe,
		stop: make(chan struct{}), exited: make(chan error, 1), done: make(chan struct{}), started: make(chan time.Time, 1),
	}
	go p.supervise()
	tb.Cleanup(func() {
		f.state.retire()
		p.kill()
		if tb.Failed() {
			tb.Logf("lambdatest: output of %s:\n%s", f.Name, f.logs.String())
		}
	})
	select {
	case <-f.state.polled:
		// The first process started (and sent its start time) before it
		// could poll.
		f.Init = time.Since(<-p.started)
	case err := <-p.exited:
		tb.Fatalf("lambdatest: %s %v\n%s", f.Name, err, f.logs.String())
	case <-time.After(startTimeout):
		tb.Fatalf("lambdatest: %s did not poll the Runtime API within %v\n%s", f.Name, startTimeout, f.logs.String())
	}
	return f
}

// process runs a function's executable the way Lambda runs a bootstrap,
// and starts it again (up to maxRestarts times) when it ends after it
// polled for an invocation.
type process struct {
	f   *Function
	exe string
	// stop is closed by kill; done is closed when supervise returns.
	stop, done chan struct{}
	// exited reports a process that ended before it polled; started the
	// first process's start time.
	exited  chan error
	started chan time.Time

	mu   sync.Mutex
	proc *os.Process
}

// supervise runs the executable until kill, or until it ends without
// having polled or too often.
func (p *process) supervise() {
	defer close(p.done)
	for restarts := 0; ; restarts++ {
		stopped, err := p.runOnce(restarts == 0)
		if stopped {
			return
		}
		reason := "exit status 0"
		if err != nil {
			reason = "exit status " + strings.TrimPrefix(err.Error(), "exit status ")
		}
		fmt.Fprintf(p.f.logs, "lambdatest: %s process ended: %s\n", p.f.Name, reason)
		p.f.state.abandon(reason)
		select {
		case <-p.f.state.polled:
		default:
			p.exited <- fmt.Errorf("exited before polling for an invocation: %s", reason)
			return
		}
		if restarts >= maxRestarts {
			return
		}
	}
}

// runOnce starts the executable and waits for it to end. stopped reports
// that kill came first (then the process is not started, or its end is
// not news).
func (p *process) runOnce(first bool) (stopped bool, err error) {
	cmd := exec.Command(p.exe)
	cmd.Dir = filepath.Dir(p.exe)
	cmd.Env = environ(p.f.Env)
	cmd.Stdout = p.f.logs
	cmd.Stderr = p.f.logs
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		return true, nil
	default:
	}
	at := time.Now()
	err = cmd.Start()
	if err == nil {
		p.proc = cmd.Process
		if first {
			p.started <- at
		}
	}
	p.mu.Unlock()
	if err == nil {
		err = cmd.Wait()
	}
	select {
	case <-p.stop:
		return true, err
	default:
		return false, err
	}
}

// kill stops the supervision, ends the running process and waits.
func (p *process) kill() {
	p.mu.Lock()
	close(p.stop)
	if p.proc != nil {
		_ = p.proc.Kill()
	}
	p.mu.Unlock()
	<-p.done
}

// handlerMu serialises the in-process starts, which set
// AWS_LAMBDA_RUNTIME_API for the moment lambda.Start reads it.
var handlerMu sync.Mutex

// StartHandler runs handler in this process through
// lambda.StartWithOptions, exactly as a function's main does, polling the
// emulator's Runtime API as the function logicalID of template.yaml (or,
// for a logical ID the template does not have, as a function of that name
// with Lambda's default 3 s timeout). It returns once the runtime polls.
//
// The runtime loop cannot be stopped: when the test ends its poller is
// parked until the test binary exits. A handler that panics makes
// lambda.Start exit the process, as it does on Lambda; test panics with
// StartBinary.
func StartHandler(tb testing.TB, env *awstest.Env, logicalID string, handler any, opts ...Option) *Function {
	tb.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	f := newFunction(tb, env, logicalID, o)
	tb.Cleanup(f.state.retire)

	handlerMu.Lock()
	defer handlerMu.Unlock()
	prev, had := os.LookupEnv("AWS_LAMBDA_RUNTIME_API")
	if err := os.Setenv("AWS_LAMBDA_RUNTIME_API", f.state.runtimeAPI()); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if had {
			_ = os.Setenv("AWS_LAMBDA_RUNTIME_API", prev)
		} else {
			_ = os.Unsetenv("AWS_LAMBDA_RUNTIME_API")
		}
	}()
	go lambdaruntime.StartWithOptions(handler)
	select {
	case <-f.state.polled:
	case <-time.After(startTimeout):
		tb.Fatalf("lambdatest: handler %s did not poll the Runtime API within %v", f.Name, startTimeout)
	}
	return f
}

// newFunction creates the function in the emulator and registers it with
// the gate.
func newFunction(tb testing.TB, env *awstest.Env, logicalID string, o options) *Function {
	tb.Helper()
	if _, err := startGate(env.Endpoint); err != nil {
		tb.Fatal(err)
	}
	f := &Function{LogicalID: logicalID, env: env, logs: &syncBuffer{}, tb: tb}
	f.spec = infra.FunctionSpec{LogicalID: logicalID, Timeout: 3, MemorySize: 128}
	vars := env.AWSEnv()
	if env.Stack != nil {
		fns, err := env.Stack.Template.Functions()
		if err != nil {
			tb.Fatal(err)
		}
		for _, s := range fns {
			if s.LogicalID == logicalID {
				f.spec = s
				vars = env.FunctionEnv(logicalID)
			}
		}
	}
	f.Name = env.Prefix + logicalID
	if n, ok := env.Functions[logicalID]; ok {
		f.Name = n
	}
	f.Env = vars
	maps.Copy(f.Env, lambdaVariables(f.Name, f.spec))
	maps.Copy(f.Env, o.env)
	f.state = register(f.Name)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The function's configuration holds the template's variables (and the
	// test's); the AWS connection and Lambda's own variables are the
	// sandbox's.
	fnEnv := maps.Clone(f.Env)
	for k := range env.AWSEnv() {
		delete(fnEnv, k)
	}
	for k := range lambdaVariables(f.Name, f.spec) {
		delete(fnEnv, k)
	}
	maps.Copy(fnEnv, o.env)
	_, err := env.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String(f.Name),
		Role:          aws.String("arn:aws:iam::000000000000:role/" + f.Name),
		Runtime:       types.Runtime(orDefault(f.spec.Runtime, "provided.al2023")),
		Handler:       aws.String(orDefault(f.spec.Handler, "bootstrap")),
		Architectures: architectures(f.spec.Architectures),
		Timeout:       aws.Int32(int32(f.spec.Timeout)),
		MemorySize:    aws.Int32(int32(f.spec.MemorySize)),
		Environment:   &types.Environment{Variables: fnEnv},
		Code:          &types.FunctionCode{ZipFile: placeholderZip()},
	})
	if err != nil {
		tb.Fatalf("lambdatest: create function %s: %v", f.Name, err)
	}
	return f
}

// lambdaVariables returns the variables Lambda sets for every function.
func lambdaVariables(name string, spec infra.FunctionSpec) map[string]string {
	v := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          gate.addr + "/_runtime/" + name,
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(spec.MemorySize),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      time.Now().UTC().Format("2006/01/02") + "/[$LATEST]lambdatest",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"_HANDLER":                        orDefault(spec.Handler, "bootstrap"),
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
	}
	if spec.LogFormat != "" {
		v["AWS_LAMBDA_LOG_FORMAT"] = spec.LogFormat
	}
	return v
}

// environ returns a process environment with only vars, PATH and the
// temporary directory: nothing else of the test's environment leaks in.
func environ(vars map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// Result is the answer of one invocation.
type Result struct {
	// Payload is the function's response, or its error document
	// ({"errorMessage":...,"errorType":...}) when FunctionError is set.
	Payload []byte
	// FunctionError is "Unhandled" when the function returned an error,
	// panicked, exited or timed out; "" on success.
	FunctionError string
	// StatusCode is the Invoke API's HTTP status.
	StatusCode int32
}

// Invoke invokes the function synchronously through the Lambda Invoke API.
func (f *Function) Invoke(ctx context.Context, payload []byte) (*Result, error) {
	out, err := f.env.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(f.Name),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	return &Result{Payload: out.Payload, FunctionError: aws.ToString(out.FunctionError), StatusCode: out.StatusCode}, nil
}

// InvokeJSON marshals event, invokes the function, fails the test on an
// invoke or function error, and unmarshals the response into out (unless
// out is nil).
func (f *Function) InvokeJSON(tb testing.TB, event, out any) {
	tb.Helper()
	b, err := json.Marshal(event)
	if err != nil {
		tb.Fatal(err)
	}
	if raw, ok := event.(json.RawMessage); ok {
		b = raw
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(f.spec.Timeout+30)*time.Second)
	defer cancel()
	res, err := f.Invoke(ctx, b)
	if err != nil {
		tb.Fatal(err)
	}
	if res.FunctionError != "" {
		tb.Fatalf("lambdatest: %s returned a function error (%s): %s", f.Name, res.FunctionError, res.Payload)
	}
	if out != nil {
		if err := json.Unmarshal(res.Payload, out); err != nil {
			tb.Fatalf("lambdatest: decode the answer of %s: %v\n%s", f.Name, err, res.Payload)
		}
	}
}

// Logs returns what the function's process wrote so far (StartBinary only).
func (f *Function) Logs() string { return f.logs.String() }

// InvocationError is the error document Lambda returns for a failed
// invocation.
type InvocationError struct {
	// ErrorMessage is the error's text.
	ErrorMessage string `json:"errorMessage"`
	// ErrorType is the error's type, such as "errorString" or
	// "Runtime.ExitError".
	ErrorType string `json:"errorType"`
}

// DecodeError reads a result's error document.
func (r *Result) DecodeError() (InvocationError, error) {
	var e InvocationError
	if r.FunctionError == "" {
		return e, errors.New("the invocation did not fail")
	}
	if err := json.Unmarshal(r.Payload, &e); err != nil {
		return e, fmt.Errorf("decode error document %q: %w", r.Payload, err)
	}
	return e, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns the contents.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// placeholderZip is the deployment package the emulator stores; the code
// that runs is the executable StartBinary started.
func placeholderZip() []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	if fw, err := w.Create("README"); err == nil {
		_, _ = fw.Write([]byte("run by internal/dev/lambdatest\n"))
	}
	_ = w.Close()
	return b.Bytes()
}

// architectures converts template architectures.
func architectures(a []string) []types.Architecture {
	var out []types.Architecture
	for _, s := range a {
		out = append(out, types.Architecture(s))
	}
	return out
}

// orDefault returns v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
