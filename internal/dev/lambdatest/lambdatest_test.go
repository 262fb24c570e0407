package lambdatest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// answer mirrors testdata/probe's answer.
type answer struct {
	Op          string `json:"op"`
	Value       string `json:"value"`
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	RemainingMs int64  `json:"remainingMs"`
	PID         int    `json:"pid"`
}

// probe builds testdata/probe once per test binary.
var probe struct {
	once sync.Once
	path string
}

func probeExecutable(t *testing.T) string {
	t.Helper()
	probe.once.Do(func() {
		// Built into a directory that outlives the first test using it.
		probe.path = lambdatest.Build(&keepTB{t}, "", "", "./internal/dev/lambdatest/testdata/probe")["./internal/dev/lambdatest/testdata/probe"]
	})
	if probe.path == "" {
		t.Fatal("probe did not build")
	}
	return probe.path
}

// keepTB gives Build a temporary directory that is not removed when the
// first test ends.
type keepTB struct{ *testing.T }

// TempDir returns a directory removed only by the OS.
func (k *keepTB) TempDir() string {
	dir, err := osMkdirTemp()
	if err != nil {
		k.Fatal(err)
	}
	return dir
}

// invoke invokes with a JSON request and decodes a successful answer.
func invoke(t *testing.T, f *lambdatest.Function, req string) (*lambdatest.Result, answer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := f.Invoke(ctx, []byte(req))
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if res.FunctionError == "" {
		if err := json.Unmarshal(res.Payload, &a); err != nil {
			t.Fatalf("answer %s: %v", res.Payload, err)
		}
	}
	return res, a
}

func TestStartBinary(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	f := lambdatest.StartBinary(t, env, "UploadFunction", lambdatest.WithExecutable(probeExecutable(t)),
		lambdatest.WithEnv(map[string]string{"CUSTOMS_UPLOAD_URL": "http://127.0.0.1:1/fake"}))

	tests := []struct {
		name      string
		req       string
		wantValue string
		wantErr   string
	}{
		{"ok template variable", `{"op":"env","name":"REQUESTS_TABLE"}`, env.Table("RequestsTable"), ""},
		{"ok overridden variable", `{"op":"env","name":"CUSTOMS_UPLOAD_URL"}`, "http://127.0.0.1:1/fake", ""},
		{"ok emulator endpoint", `{"op":"env","name":"AWS_ENDPOINT_URL"}`, env.Endpoint, ""},
		{"ok Lambda variables", `{"op":"env","name":"AWS_LAMBDA_FUNCTION_MEMORY_SIZE"}`, "256", ""},
		{"ok JSON logs as the template asks", `{"op":"env","name":"AWS_LAMBDA_LOG_FORMAT"}`, "JSON", ""},
		{"ok no leak of the test's environment", `{"op":"env","name":"HOME"}`, "", ""},
		{"fail returned error", `{"op":"error"}`, "", `{"errorMessage":"probe failed","errorType":"errorString"}`},
		{"fail panic", `{"op":"panic"}`, "", `"errorMessage":"probe panicked"`},
		{"fail process exit", `{"op":"exit"}`, "", `"errorType":"Runtime.ExitError"`},
		{"ok after a crash the function runs again", `{"op":"env","name":"AWS_LAMBDA_FUNCTION_NAME"}`, f.Name, ""},
	}
	for _, tc := range tests {
		// Sequential: the crash cases must precede the last one.
		t.Run(tc.name, func(t *testing.T) {
			res, a := invoke(t, f, tc.req)
			if tc.wantErr != "" {
				if res.FunctionError != "Unhandled" || !strings.Contains(string(res.Payload), tc.wantErr) {
					t.Fatalf("FunctionError %q payload %s, want Unhandled with %s", res.FunctionError, res.Payload, tc.wantErr)
				}
				return
			}
			if res.FunctionError != "" {
				t.Fatalf("function error: %s", res.Payload)
			}
			if a.Value != tc.wantValue {
				t.Errorf("value %q, want %q", a.Value, tc.wantValue)
			}
		})
	}

	_, a := invoke(t, f, `{"op":"context"}`)
	if !strings.HasSuffix(a.FunctionARN, ":function:"+f.Name) || a.RequestID == "" {
		t.Errorf("context ARN %q request %q", a.FunctionARN, a.RequestID)
	}
	// The template gives upload a 30 s timeout; the deadline says so.
	if a.RemainingMs < 25000 || a.RemainingMs > 30000 {
		t.Errorf("remaining time %d ms, want just under the template's 30 s", a.RemainingMs)
	}
	conf, err := env.Lambda.GetFunctionConfiguration(context.Background(), &lambdaGetConfig{FunctionName: aws.String(f.Name)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(conf.Timeout) != 30 || conf.Environment == nil || conf.Environment.Variables["PAYMENTS_TABLE"] != env.Table("PaymentsTable") {
		t.Errorf("function configuration = timeout %d env %v", aws.ToInt32(conf.Timeout), conf.Environment)
	}
}

func TestConcurrentInvokesAreServedOneAtATime(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	f := lambdatest.StartBinary(t, env, "Probe", lambdatest.WithExecutable(probeExecutable(t)))
	var wg sync.WaitGroup
	pids := make([]int, 3)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, a := invoke(t, f, `{"op":"sleep","sleepMs":200}`)
			if res.FunctionError != "" {
				t.Errorf("invoke %d: %s", i, res.Payload)
			}
			pids[i] = a.PID
		}()
	}
	wg.Wait()
	if pids[0] == 0 || pids[0] != pids[1] || pids[1] != pids[2] {
		t.Errorf("pids %v, want one sandbox serving all", pids)
	}
}

func TestStartBinaryFailsWhenInitExits(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		lambdatest.StartBinary(ft, env, "NoBinary", lambdatest.WithExecutable("/bin/false"))
	}()
	<-done
	if !ft.fatal || !strings.Contains(ft.msg, "exited before polling") {
		t.Fatalf("StartBinary of a process that exits at once: fatal=%t %q", ft.fatal, ft.msg)
	}
}

func TestStartHandler(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	type in struct {
		N int `json:"n"`
	}
	f := lambdatest.StartHandler(t, env, "Doubler", func(ctx context.Context, v in) (map[string]any, error) {
		if v.N < 0 {
			return nil, errors.New("negative")
		}
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return map[string]any{"n": 2 * v.N, "arn": lc.InvokedFunctionArn, "ms": time.Until(deadline).Milliseconds()}, nil
	})
	tests := []struct {
		name    string
		req     string
		want    string
		wantErr string
	}{
		{"ok doubles", `{"n":21}`, `"n":42`, ""},
		{"fail handler error", `{"n":-1}`, "", `{"errorMessage":"negative","errorType":"errorString"}`},
		{"fail payload does not decode", `{"n":"x"}`, "", `"errorType":"UnmarshalTypeError"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.Invoke(context.Background(), []byte(tc.req))
			if err != nil {
				t.Fatal(err)
			}
			got := string(res.Payload)
			if tc.wantErr != "" {
				if res.FunctionError == "" || !strings.Contains(got, tc.wantErr) {
					t.Fatalf("got %q (%s), want error %s", got, res.FunctionError, tc.wantErr)
				}
				return
			}
			if res.FunctionError != "" || !strings.Contains(got, tc.want) || !strings.Contains(got, ":function:"+f.Name) {
				t.Fatalf("got %q (%s), want %s", got, res.FunctionError, tc.want)
			}
		})
	}
}

func TestEnableEventSources(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	var seen []string
	f := lambdatest.StartHandler(t, env, "AssembleFunction", func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, r := range ev.Records {
			mu.Lock()
			seen = append(seen, r.Body)
			mu.Unlock()
			if r.EventSource != "aws:sqs" || !strings.HasSuffix(r.EventSourceARN, "AssembleQueue") || r.Attributes["ApproximateReceiveCount"] == "" {
				t.Errorf("record %+v does not look like Lambda's", r)
			}
			if r.Body == "bad" {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	})
	f.EnableEventSources(t)
	url := env.Queue("AssembleQueue")
	for _, body := range []string{"good-1", "bad", "good-2"} {
		if _, err := env.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, err := env.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		// Done when all three were delivered, the good ones deleted and the
		// bad one left in flight until its visibility timeout.
		if n >= 3 && a.Attributes["ApproximateNumberOfMessages"] == "0" && a.Attributes["ApproximateNumberOfMessagesNotVisible"] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seen %v, queue %v", seen, a.Attributes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
