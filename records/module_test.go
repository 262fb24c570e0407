package records_test

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// roundTrip is a program of another module: it records payments through
// the public packages only (one, a batch with a broken one, one again),
// reads one back and prints what it saw.
const roundTrip = `package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ceb179/ceb179/records"
	"github.com/ceb179/ceb179/records/dynamostore"
)

func payment(id, order string) records.Payment {
	return records.Payment{
		InitalRequest: "req " + id, InitalResponse: "resp " + id,
		EbpCode: "3301964J31", PayCode: "312226T001", PayTransactionID: id,
		TotalAmount: "5.0", Currency: "142", VerDept: "3", PayType: "1",
		TradingTime: records.FormatTradingTime(time.Now()),
		Orders: []records.Order{{OrderNo: order, GoodsInfo: []records.Goods{{Gname: "奶粉 <900g>", ItemLink: "https://shop.example.cn/a?b=1&c=2"}},
			RecpAccount: "6222021001115678", RecpName: "杭州某某跨境贸易有限公司"}},
	}
}

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		panic(err)
	}
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("PAYMENTS_TABLE"))
	rec := records.NewRecorder(store)
	res, err := rec.Record(ctx, payment("EXT-1", "EXT-ORD-1"))
	fmt.Println("record:", res, err)
	bad := payment("EXT-3", "EXT-ORD-3")
	bad.Currency = ""
	out, _ := rec.RecordBatch(ctx, []records.Payment{payment("EXT-2", "EXT-ORD-2"), bad, payment("EXT-1", "EXT-ORD-1")})
	for _, o := range out {
		var ve *records.ValidationError
		fmt.Println("batch:", o.Index, o.Result, o.Reasons, errors.As(o.Err, &ve))
	}
	p, err := store.PaymentByOrder(ctx, "EXT-ORD-1")
	if err != nil {
		panic(err)
	}
	line, _ := p.MarshalJSON()
	fmt.Println("read back:", p.PayTransactionID, p.TotalAmount, len(p.Orders), p.Orders[0].GoodsInfo[0].Gname, len(line) > 0)
	_, err = store.PaymentByOrder(ctx, "EXT-ORD-3")
	fmt.Println("not stored:", errors.Is(err, records.ErrNotFound))
}
`

// readmeExample returns the Go program of the README's "From Go services".
func readmeExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []string
		in     bool
		indent string
	)
	for _, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(l, " ")
		switch {
		case !in && trimmed == "```go":
			in, indent, out = true, l[:len(l)-len(trimmed)], nil
		case in && trimmed == "```":
			if src := strings.Join(out, "\n"); strings.Contains(src, "records/dynamostore") {
				return src + "\n"
			}
			in = false
		case in:
			out = append(out, strings.TrimPrefix(l, indent))
		}
	}
	t.Fatal("README.md has no Go program using records/dynamostore")
	return ""
}

// externalModule writes a module of its own in a temp dir, requiring this
// checkout through a replace directive, with one program per entry of
// mains (directory → source), and builds it offline from the module cache
// (GOPROXY=off; CI fills the cache with go mod download). It returns the
// directory and the environment to build and run in.
func externalModule(t *testing.T, mains map[string]string) (string, []string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/platform\n\ngo 1.26.0\n\nrequire github.com/ceb179/ceb179 v0.0.0-00010101000000-000000000000\n\nreplace github.com/ceb179/ceb179 => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, src := range mains {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
	gobin := lambdatest.GoTool()
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", dir + "/bin/", "./..."}} {
		cmd := exec.Command(gobin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in a module of its own: %v\n%s\ngo.mod:\n%s", strings.Join(args, " "), err, out, gomod)
		}
	}
	return dir, env
}

// run runs the program name of dir against the emulator env.
func run(t *testing.T, dir, name string, env *awstest.Env) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, "bin", name))
	vars := env.Env()
	maps.Copy(vars, map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": env.Endpoint})
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", name, err, out.String(), errs.String())
	}
	return out.String()
}

// TestReadmeExample builds, in a module of its own that requires this
// checkout, the README's Go program and a round trip through the public
// packages, and runs both against the emulator: a payment is recorded and
// read back, a broken one refused by field, a repeated one a duplicate.
func TestReadmeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module of its own")
	}
	dir, _ := externalModule(t, map[string]string{"readme": readmeExample(t), "roundtrip": roundTrip})
	env := awstest.New(t)

	got := run(t, dir, "roundtrip", env)
	for _, want := range []string{
		"record: recorded <nil>\n",
		"batch: 0 recorded [] false\n",
		"batch: 1 invalid [payExchangeInfoHead.currency: required] true\n",
		"batch: 2 duplicate [] false\n",
		"read back: EXT-1 5.0 1 奶粉 <900g> true\n",
		"not stored: true\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("round trip printed\n%s\nwant a line %q", got, want)
		}
	}
	// The README's program stamps tradingTime with time.Now, so a second
	// run a second later records different data (a conflict, rightly):
	// it is run once, and the round trip above shows a repeat answered
	// duplicate.
	if got := run(t, dir, "readme", env); got != "recorded\n2019030422001434180520096410 88.08 1\n" {
		t.Errorf("README example printed %q", got)
	}
}
