package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/ops/opstest"
	"github.com/ceb179/ceb179/internal/queue"
)

// opsDay is the day of the seeded data: a day in the past, so that every
// request has its outcome.
const opsDay = "2026-11-24"

// opsBed is a local stack file pointing at emulated tables holding a
// realistic day (2000 requests with every outcome), shared by the operator
// command tests.
type opsBed struct {
	env    *awstest.Env
	store  *dynamo.Store
	data   string
	seeded opstest.Seeded
}

var (
	opsOnce   sync.Once
	opsShared *opsBed
	opsErr    error
)

func theOpsBed(t *testing.T) *opsBed {
	t.Helper()
	opsOnce.Do(func() {
		env := awstest.New(t)
		b := &opsBed{env: env, data: filepath.Join(os.TempDir(), fmt.Sprintf("ceb179-ops-%d", os.Getpid()))}
		b.store = dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
		if b.seeded, opsErr = opstest.SeedDay(context.Background(), b.store, opsDay, 2000, "OPS-", 7); opsErr != nil {
			return
		}
		opsErr = devstack.WriteState(b.data, devstack.Published{
			Endpoint: env.Endpoint, Region: env.Region,
			Tables: devstack.PublishedTables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")},
			Queues: devstack.PublishedQueues{Assemble: env.Queue("AssembleQueue"), Sign: env.Queue("SignQueue")},
			PID:    os.Getpid(), StartedAt: time.Now(),
		})
		opsShared = b
	})
	if opsErr != nil {
		t.Fatal(opsErr)
	}
	if opsShared == nil {
		t.Fatal("the shared test data could not be set up (see the first test's failure)")
	}
	return opsShared
}

// TestMain removes the shared stack file of the operator tests and the
// command built for the process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if opsShared != nil {
		_ = os.RemoveAll(opsShared.data)
	}
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

func TestStatusCommand(t *testing.T) {
	b := theOpsBed(t)
	s := b.seeded
	onTime := s.Count(ops.OutcomeOnTime)
	// A bridge whose second card refused its PIN.
	bridgeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(ceb179.SignerHealth{Time: time.Now(), Signers: []ceb179.SignerStatus{
			{Name: "card-1", EbpCode: opstest.EbpCodes[0], State: "healthy"},
			{Name: "card-2", EbpCode: opstest.EbpCodes[0], State: "disabled: PIN refused", Failures: 1},
		}})
	}))
	defer bridgeSrv.Close()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "ok table", args: []string{"--day", opsDay}, stdout: []string{
			fmt.Sprintf("requests %d, on time %d (%.2f%%), late %d, NO_DATA %d, INVALID %d, REJECTED %d, FAILED %d, CAPPED %d, stuck %d, in progress 0",
				s.Total(), onTime, 100*float64(onTime)/float64(s.Total()), s.Count(ops.OutcomeLate), s.Count(ops.OutcomeNoData),
				s.Count(ops.OutcomeInvalid), s.Count(ops.OutcomeRejected), s.Count(ops.OutcomeFailed), s.Count(ops.OutcomeCapped), s.Count(ops.OutcomeStuck)),
			"end to end (request to accepted post): p50", "per ebpCode", opstest.EbpCodes[0], "(not assembled)", "last 7 days", "2026-11-18",
			"not on time: " + fmt.Sprint(s.Total()-onTime), s.Sessions[ops.OutcomeRejected][0], "支付企业不一致"}},
		{name: "ok check says some were not on time", args: []string{"--day", opsDay, "--check", "--days", "1"}, code: exitFail, stdout: []string{"last 1 days"}},
		{name: "ok a quiet day", args: []string{"--day", "2026-11-20", "--days", "1", "--check"}, stdout: []string{"requests 0,", "no failures"}},
		{name: "fail bad day is a usage error", args: []string{"--day", "yesterday"}, code: exitUsage, stderr: "--day must be a date"},
		{name: "fail bad days", args: []string{"--days", "0"}, code: exitUsage, stderr: "--days must be"},
		{name: "ok a refused PIN shows", args: []string{"--day", opsDay, "--bridge", bridgeSrv.URL + "/status"}, stdout: []string{"card-2", "disabled: PIN refused"}},
		{name: "fail bridge not on loopback", args: []string{"--day", opsDay, "--bridge", "http://192.0.2.1/status"}, stderr: "signer health unknown", stdout: []string{"per ebpCode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"status", "--local", "--data", b.data}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}

	r := runCLI(t, nil, "status", "--local", "--data", b.data, "--day", opsDay, "--json")
	var st ops.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != exitOK {
		t.Fatalf("--json: exit %d, %v\n%s", r.code, err, r.stderr)
	}
	for _, o := range ops.Outcomes {
		if st.Today.By[o] != s.Count(o) {
			t.Errorf("--json %s = %d, want %d", o, st.Today.By[o], s.Count(o))
		}
	}
	if len(st.Days) != 7 || len(st.Today.Failures) != s.Total()-onTime || st.Today.Timeline != nil {
		t.Errorf("--json: %d days, %d failures, %d timeline points", len(st.Days), len(st.Today.Failures), len(st.Today.Timeline))
	}
	if r := runCLI(t, nil, "status", "--local", "--data", t.TempDir()); r.code != exitFail || !strings.Contains(r.stderr, "is `ceb179 local` running?") {
		t.Errorf("no stack: exit %d %q", r.code, r.stderr)
	}
}

// TestStatusFromEnvironment reads the same table through REQUESTS_TABLE and
// AWS_ENDPOINT_URL instead of --local.
func TestStatusFromEnvironment(t *testing.T) {
	b := theOpsBed(t)
	for k, v := range b.env.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", b.env.Endpoint)
	r := runCLI(t, nil, "status", "--day", opsDay, "--days", "1")
	if r.code != exitOK || !strings.Contains(r.stdout, fmt.Sprintf("requests %d,", b.seeded.Total())) || !strings.Contains(r.stdout, "at "+b.env.Endpoint) {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Setenv("REQUESTS_TABLE", "")
	if r := runCLI(t, nil, "status"); r.code != exitFail || !strings.Contains(r.stderr, "REQUESTS_TABLE is not set") {
		t.Errorf("no table: exit %d %q", r.code, r.stderr)
	}
}

func TestShowCommand(t *testing.T) {
	b := theOpsBed(t)
	failed := b.seeded.Sessions[ops.OutcomeFailed][0]
	late := b.seeded.Sessions[ops.OutcomeLate][0]
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "ok failed by sessionID", args: []string{failed}, stdout: []string{"session " + failed, "FAILED (FAILED)", "assembly ebpCode", "sign job digest",
			"upload attempt 3", "no answer: http", "gave up at the end of the retry window", "upload attempts:"}},
		{name: "ok late by orderNo", args: []string{b.seeded.Orders[late]}, stdout: []string{"session " + late, "ACCEPTED (LATE)", "UNCERTAIN", "customs 10000"}},
		{name: "fail unknown", args: []string{"NO-SUCH-THING"}, code: exitFail, stderr: "neither a sessionID nor an orderNo"},
		{name: "fail no argument", args: nil, code: exitUsage, stderr: "exactly one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"show", "--local", "--data", b.data}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "c2lnbmF0dXJl") {
				t.Error("show prints a signValue")
			}
		})
	}
	r := runCLI(t, nil, "show", "--local", "--data", b.data, "--json", failed)
	var trails []ops.Trail
	if err := json.Unmarshal([]byte(r.stdout), &trails); err != nil || len(trails) != 1 || len(trails[0].Attempts) != 3 {
		t.Fatalf("--json: %v %+v", err, trails)
	}
}

func TestReplayCommand(t *testing.T) {
	b := theOpsBed(t)
	ctx := context.Background()
	rejected := b.seeded.Sessions[ops.OutcomeRejected][0]
	noData := b.seeded.Sessions[ops.OutcomeNoData][0]
	accepted := b.seeded.Sessions[ops.OutcomeOnTime][1]
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
		replay int
	}{
		{name: "ok rejected", args: []string{"--why", "ebpCode fixed", "--by", "alice", rejected}, stdout: "replay 1 of session " + rejected, replay: 1},
		{name: "ok no data", args: []string{"--why", "record imported late", noData}, stdout: "(order " + b.seeded.Orders[noData] + ", was NO_DATA)", replay: 1},
		{name: "fail accepted", args: []string{"--why", "x", accepted}, code: exitFail, stderr: "ACCEPTED by customs"},
		{name: "fail in progress", args: []string{"--why", "again", rejected}, code: exitFail, stderr: "still within its time"},
		{name: "ok accepted forced", args: []string{"--why", "customs lost it", "--force", accepted}, stdout: "was ACCEPTED", replay: 1},
		{name: "fail no reason", args: []string{rejected}, code: exitUsage, stderr: "--why is required"},
		{name: "fail unknown", args: []string{"--why", "x", "NOPE"}, code: exitFail, stderr: "no such request"},
	}
	q := queue.New(b.env.SQS, b.env.Queue("AssembleQueue"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"replay", "--local", "--data", b.data}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) || !strings.Contains(r.stdout, tt.stdout) {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
			if tt.replay == 0 {
				return
			}
			msgs, err := q.Receive(ctx, 10, time.Second, time.Minute)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("assemble queue: %d messages, %v", len(msgs), err)
			}
			_ = q.Delete(ctx, msgs[0].ReceiptHandle)
			var m ceb179.AssembleMessage
			if err := json.Unmarshal([]byte(msgs[0].Body), &m); err != nil || m.Replay != tt.replay {
				t.Fatalf("message %s (%v)", msgs[0].Body, err)
			}
			v, err := b.store.GetRequestView(ctx, m.SessionID)
			if err != nil || v.State != ceb179.StateReceived || v.Replays != tt.replay || v.LastReplayWhy == "" {
				t.Errorf("request after replay %+v %v", v, err)
			}
		})
	}
}

func TestDLQCommand(t *testing.T) {
	b := theOpsBed(t)
	ctx := context.Background()
	// Sessions seeded as stuck lost their sign job: it is in the sign DLQ.
	stuck := b.seeded.Sessions[ops.OutcomeStuck]
	signDLQ := queue.New(b.env.SQS, b.env.Queue("SignDeadLetterQueue"))
	asmDLQ := queue.New(b.env.SQS, b.env.Queue("AssembleDeadLetterQueue"))
	for _, id := range stuck {
		p, err := b.store.GetPending(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := signDLQ.Send(ctx, ceb179.SignJob{SessionID: id, EbpCode: p.EbpCode, Deadline: p.Deadline.UnixMilli(), Digest: p.Digest}); err != nil {
			t.Fatal(err)
		}
	}
	if err := asmDLQ.Send(ctx, ceb179.AssembleMessage{SessionID: "ghost", OrderNo: "O"}); err != nil {
		t.Fatal(err)
	}
	all := len(stuck) + 1
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "ok list", args: []string{"list"}, stdout: []string{fmt.Sprintf("%d messages; nothing removed", all), stuck[0], "ASSEMBLED", "unknown session"}},
		{name: "ok list again: nothing lost or hidden", args: []string{"list"}, stdout: []string{fmt.Sprintf("%d messages; nothing removed", all)}},
		{name: "ok list the sign queue", args: []string{"list", "--queue", "sign"}, stdout: []string{fmt.Sprintf("%d messages", len(stuck))}},
		{name: "ok redrive", args: []string{"redrive"}, stdout: []string{"assemble: 1 moved back", fmt.Sprintf("sign: %d moved back to the sign queue, 0 stale dropped", len(stuck))}},
		{name: "ok empty after redrive", args: []string{"list"}, stdout: []string{"dead-letter queues empty"}},
		{name: "fail no verb", args: nil, code: exitUsage, stderr: "say list or redrive"},
		{name: "fail bad queue", args: []string{"list", "--queue", "upload"}, code: exitUsage, stderr: "--queue must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"dlq", "--local", "--data", b.data}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	sign := queue.New(b.env.SQS, b.env.Queue("SignQueue"))
	got := 0
	for range 10 {
		msgs, err := sign.Receive(ctx, 10, time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got++
			_ = sign.Delete(ctx, m.ReceiptHandle)
		}
	}
	if got != len(stuck) {
		t.Errorf("sign queue holds %d redriven jobs, want %d", got, len(stuck))
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStatusServe(t *testing.T) {
	b := theOpsBed(t)
	if r := runCLI(t, nil, "status", "--local", "--data", b.data, "--serve", "0.0.0.0:0"); r.code != exitUsage || !strings.Contains(r.stderr, "not a loopback address") {
		t.Fatalf("fail public address: exit %d %q", r.code, r.stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"status", "--local", "--data", b.data, "--serve", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	var addr string
	for range 100 {
		if s := out.String(); strings.Contains(s, "http://") {
			addr = strings.Fields(s[strings.Index(s, "http://"):])[0]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if addr == "" {
		cancel()
		t.Fatalf("no address printed: %q %q", out.String(), errOut.String())
	}
	code, body := httpGet(t, addr+"?day="+opsDay)
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`id="requests">%d<`, b.seeded.Total())) {
		t.Errorf("GET %s: %d %.200s", addr, code, body)
	}
	cancel()
	select {
	case c := <-done:
		if c != exitOK {
			t.Errorf("exit %d after Ctrl-C: %s", c, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("status --serve did not stop")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
