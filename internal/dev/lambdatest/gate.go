package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// The gate is a small proxy in front of the emulator's Runtime API, one per
// test binary. It lets a test know when a runtime is polling (the emulator
// routes an Invoke to a Runtime API handler only once one has polled), it
// reports Runtime.ExitError for the invocation a crashed process held, as
// Lambda does, and it parks the pollers of functions whose test has ended so
// that lambda.Start never sees an error (it would exit the process).

// gate is the process-wide Runtime API proxy.
var gate struct {
	once     sync.Once
	addr     string
	upstream string
	client   *http.Client
	err      error

	mu      sync.Mutex
	runtime map[string]*runtimeState
}

// runtimeState is what the gate knows about one function's runtime.
type runtimeState struct {
	name     string
	polled   chan struct{}
	pollOnce sync.Once
	retired  chan struct{}
	retOnce  sync.Once

	mu      sync.Mutex
	current string // request ID of the invocation the runtime holds
}

// startGate starts the gate on first use, in front of upstream.
func startGate(upstream string) (string, error) {
	gate.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			gate.err = fmt.Errorf("runtime gate: %w", err)
			return
		}
		gate.addr = ln.Addr().String()
		gate.upstream = upstream
		gate.runtime = map[string]*runtimeState{}
		gate.client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
		// Never closed: parked pollers of finished tests stay connected
		// until the test binary exits.
		go func() { _ = http.Serve(ln, http.HandlerFunc(serveGate)) }()
	})
	if gate.err != nil {
		return "", gate.err
	}
	if gate.upstream != upstream {
		return "", fmt.Errorf("runtime gate: started for %s, asked for %s", gate.upstream, upstream)
	}
	return gate.addr, nil
}

// register adds a function to the gate.
func register(name string) *runtimeState {
	st := &runtimeState{name: name, polled: make(chan struct{}), retired: make(chan struct{})}
	gate.mu.Lock()
	gate.runtime[name] = st
	gate.mu.Unlock()
	return st
}

// runtimeAPI returns the AWS_LAMBDA_RUNTIME_API value for the function.
func (st *runtimeState) runtimeAPI() string {
	return gate.addr + "/_runtime/" + st.name
}

// retire parks the function's pollers for good.
func (st *runtimeState) retire() {
	st.retOnce.Do(func() { close(st.retired) })
}

// isRetired reports whether retire was called.
func (st *runtimeState) isRetired() bool {
	select {
	case <-st.retired:
		return true
	default:
		return false
	}
}

// abandon reports the held invocation, if any, as failed with a
// Runtime.ExitError, the way Lambda answers when the runtime process exits
// during an invocation.
func (st *runtimeState) abandon(reason string) {
	st.mu.Lock()
	id := st.current
	st.current = ""
	st.mu.Unlock()
	if id == "" {
		return
	}
	body, _ := json.Marshal(map[string]string{
		"errorType":    "Runtime.ExitError",
		"errorMessage": fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", id, reason),
	})
	url := gate.upstream + "/_runtime/" + st.name + "/2018-06-01/runtime/invocation/" + id + "/error"
	resp, err := gate.client.Post(url, "application/json", bytes.NewReader(body))
	if err == nil {
		_ = resp.Body.Close()
	}
}

// serveGate forwards one Runtime API request.
func serveGate(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/_runtime/")
	name, _, _ := strings.Cut(rest, "/")
	gate.mu.Lock()
	st := gate.runtime[name]
	gate.mu.Unlock()
	if !ok || st == nil {
		http.Error(w, "unknown function", http.StatusNotFound)
		return
	}
	if st.isRetired() {
		<-r.Context().Done()
		return
	}
	isNext := r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/invocation/next")
	isResult := r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/response") || strings.HasSuffix(r.URL.Path, "/error"))
	if isNext {
		st.mu.Lock()
		st.current = ""
		st.mu.Unlock()
		st.pollOnce.Do(func() { close(st.polled) })
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-st.retired:
			cancel()
		case <-ctx.Done():
		}
	}()
	out, err := http.NewRequestWithContext(ctx, r.Method, gate.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := gate.client.Do(out)
	if err != nil {
		if st.isRetired() {
			<-r.Context().Done()
			return
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		if st.isRetired() {
			<-r.Context().Done()
		}
		return
	}
	if isNext && resp.StatusCode == http.StatusOK {
		st.mu.Lock()
		st.current = resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		st.mu.Unlock()
	}
	if isResult {
		st.mu.Lock()
		st.current = ""
		st.mu.Unlock()
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}
