package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// importFixture reads the multi-order payment of records/testdata.
func importFixture(tb testing.TB) records.Payment {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "records", "testdata", "multi.json"))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := records.ParsePayment(b)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// writeImportFile writes n payment lines, one to three orders each, and
// replaces the lines in bad (1-based) with refused ones. It returns the path.
func writeImportFile(tb testing.TB, dir string, n int, bad map[int]string) string {
	tb.Helper()
	base := importFixture(tb)
	path := filepath.Join(dir, "payments.jsonl")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= n; i++ {
		if line, ok := bad[i]; ok {
			fmt.Fprintln(w, line)
			continue
		}
		p := base
		p.PayTransactionID = fmt.Sprintf("42000003012019%010d", i)
		p.Orders = append(p.Orders[:0:0], base.Orders[:1+i%3]...)
		for j := range p.Orders {
			p.Orders[j].OrderNo = fmt.Sprintf("ORD%08d-%d", i, j)
		}
		b, err := p.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestImport10000(t *testing.T) {
	env := awstest.New(t)
	env.Setenv(t)
	dir := t.TempDir()
	good := func(i int) string {
		p := importFixture(t)
		p.PayTransactionID = fmt.Sprintf("42000003012019%010d", i)
		p.Orders = p.Orders[:1]
		p.Orders[0].OrderNo = fmt.Sprintf("ORD%08d-0", i)
		b, _ := p.MarshalJSON()
		return string(b)
	}
	bad := map[int]string{
		17:   strings.Replace(good(17), `"totalAmount":5.0`, `"totalAmount":"5.0"`, 1),
		2500: strings.Replace(good(2500), `"tradingTime":"20260304235959"`, `"tradingTime":"2019-03-04"`, 1),
		5000: `{"this is":"not a payment"`,
		7777: strings.Replace(strings.Replace(good(7777), `"currency":"142"`, `"currency":""`, 1), `"verDept":"2"`, `"verDept":"7"`, 1),
		9999: strings.Replace(good(9999), `"ORD00009999-0"`, `"ORD00000001-0"`, 1), // order of payment 1
	}
	path := writeImportFile(t, dir, 10000, bad)

	start := time.Now()
	r := runCLI(t, nil, "import", "--progress=on", path)
	elapsed := time.Since(start)
	if r.code != exitFail {
		t.Fatalf("exit %d, want 1 (lines refused)\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	wantSummary := "10000 lines: imported 9995, skipped as duplicate 0, refused 5"
	if !strings.Contains(r.stdout, wantSummary) || !strings.Contains(r.stdout, "failed 0") {
		t.Errorf("summary %q, want %q", r.stdout, wantSummary)
	}
	if !strings.Contains(r.stderr, "importing payments.jsonl") || !strings.Contains(r.stderr, "100%") {
		t.Errorf("no progress bar on stderr: %q", r.stderr)
	}
	t.Logf("imported 10000 lines in %v (%.0f lines/s)", elapsed, 10000/elapsed.Seconds())

	refusals := readRefusals(t, path+".refused.jsonl")
	wantReasons := map[int]string{
		17:   "payExchangeInfoHead.totalAmount must be a JSON number, not a string",
		2500: "payExchangeInfoHead.tradingTime: must be a real time written yyyyMMddHHmmss",
		5000: "not a JSON object",
		7777: "payExchangeInfoHead.currency: required; payExchangeInfoHead.verDept: must be \"1\", \"2\" or \"3\"",
		9999: "order ORD00000001-0 already belongs to payment 420000030120190000000001",
	}
	if len(refusals) != len(wantReasons) {
		t.Fatalf("refusals %+v", refusals)
	}
	for _, f := range refusals {
		if got := strings.Join(f.Reasons, "; "); !strings.Contains(got, wantReasons[f.Line]) {
			t.Errorf("line %d: reasons %q, want %q", f.Line, got, wantReasons[f.Line])
		}
		if strings.Contains(strings.Join(f.Reasons, ""), "6222021001115678") {
			t.Errorf("line %d: reasons repeat payment data", f.Line)
		}
	}

	// Every imported payment is findable by any of its orders.
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Payments: env.Table("PaymentsTable")}, 0)
	for _, i := range []int{1, 2, 3, 5001, 10000} {
		p, err := store.PaymentByOrder(context.Background(), fmt.Sprintf("ORD%08d-%d", i, i%3))
		if err != nil || len(p.Orders) != 1+i%3 {
			t.Errorf("payment %d: %v, %d orders", i, err, len(p.Orders))
		}
	}

	// A second run imports nothing new; it may be run after any interruption.
	r = runCLI(t, nil, "import", "--progress=off", path)
	if !strings.Contains(r.stdout, "imported 0, skipped as duplicate 9995, refused 5") {
		t.Errorf("second run: %s %s", r.stdout, r.stderr)
	}
}

// readRefusals reads a refusals file.
func readRefusals(tb testing.TB, path string) []records.Refusal {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []records.Refusal
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r records.Refusal
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("refusals file: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func TestImportLocal(t *testing.T) {
	env := awstest.New(t)
	// No AWS variables: --local must take everything from the stack file.
	for k := range env.Env() {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := writeImportFile(t, dir, 20, nil)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "fail no stack running", args: []string{"import", "--local", "--data", data, path}, code: exitFail, stderr: "is `ceb179 local` running?"},
		{name: "fail no table without --local", args: []string{"import", path}, code: exitFail, stderr: "PAYMENTS_TABLE is not set"},
		{name: "fail no file", args: []string{"import", filepath.Join(dir, "missing.jsonl")}, code: exitUsage, stderr: "no such file"},
		{name: "fail two files", args: []string{"import", path, path}, code: exitUsage, stderr: "exactly one input FILE"},
	}
	for _, tt := range tests {
		r := runCLI(t, nil, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%s: exit %d stderr %q, want %d %q", tt.name, r.code, r.stderr, tt.code, tt.stderr)
		}
	}

	if err := devstack.WriteState(data, devstack.Published{
		Endpoint: env.Endpoint, Region: env.Region,
		Tables: devstack.PublishedTables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")},
		Queues: devstack.PublishedQueues{Assemble: env.Queue("AssembleQueue"), Sign: env.Queue("SignQueue")},
		PID:    os.Getpid(), StartedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "import", "--local", "--data", data, path)
	if r.code != exitOK || !strings.Contains(r.stdout, "imported 20, skipped as duplicate 0, refused 0,") || !strings.Contains(r.stdout, "(local)") {
		t.Errorf("ok local import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path + ".refused.jsonl"); !os.IsNotExist(err) {
		t.Errorf("an empty refusals file was left: %v", err)
	}
}

// BenchmarkImport measures `ceb179 import` end to end against the
// emulated stack: parse, validate and write 2000 payments (one to three
// orders each) per iteration, reporting payments per second.
func BenchmarkImport(b *testing.B) {
	env := awstest.New(b)
	env.Setenv(b)
	dir := b.TempDir()
	const n = 2000
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		sub := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		path := writeImportFile(b, sub, n, nil)
		// Each iteration imports new payments: renumber them.
		raw, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		raw = []byte(strings.ReplaceAll(strings.ReplaceAll(string(raw), `"ORD`, fmt.Sprintf(`"I%dORD`, i)), `"payTransactionId":"42`, fmt.Sprintf(`"payTransactionId":"I%d-42`, i)))
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r := runCLI(b, nil, "import", "--progress=off", path)
		total += time.Since(start)
		if r.code != exitOK || !strings.Contains(r.stdout, fmt.Sprintf("imported %d,", n)) {
			b.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "payments/s")
}
