package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// TestCoverage10000 declares 10,000 orders of which 37 have no payment
// record, and two records whose orders were not declared: coverage lists
// exactly the 37 and exits 1, and names the two records.
func TestCoverage10000(t *testing.T) {
	env := awstest.New(t)
	env.Setenv(t)
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Payments: env.Table("PaymentsTable")}, 0)
	ctx := context.Background()

	missing := map[string]bool{}
	for i := range 37 {
		missing[fmt.Sprintf("CVG%05d", (i*271+13)%10000)] = true
	}
	var (
		lines   bytes.Buffer
		ps      []records.Payment
		pending []records.Order
	)
	base := importFixture(t)
	now := time.Now()
	base.TradingTime = records.FormatTradingTime(now)
	today := ceb179.Day(now)
	flush := func() {
		p := base
		p.PayTransactionID = fmt.Sprintf("CVG-PAY-%05d", len(ps))
		p.Orders = pending
		ps, pending = append(ps, p), nil
	}
	for i := range 10000 {
		no := fmt.Sprintf("CVG%05d", i)
		if i%2 == 0 {
			fmt.Fprintln(&lines, no)
		} else {
			fmt.Fprintf(&lines, "{\"orderNo\":%q,\"declaredAt\":%q}\n", no, now.Format(time.RFC3339))
		}
		if missing[no] {
			continue
		}
		o := base.Orders[i%3]
		o.OrderNo = no
		if pending = append(pending, o); len(pending) == 3 {
			flush()
		}
	}
	pending = append(pending, base.Orders[0], base.Orders[1])
	pending[len(pending)-2].OrderNo, pending[len(pending)-1].OrderNo = "UNDECLARED-1", "UNDECLARED-2"
	flush()
	seedStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(ps))
	for start := 0; start < len(ps); start += 100 {
		chunk := ps[start:min(len(ps), start+100)]
		wg.Go(func() {
			for _, err := range store.PutPayments(ctx, chunk) {
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	t.Logf("seeded %d payments in %s", len(ps), time.Since(seedStart))
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "orders.txt")
	if err := os.WriteFile(path, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	cliStart := time.Now()
	r := runCLI(t, nil, "coverage", "--since", today, path)
	t.Logf("coverage in %s", time.Since(cliStart))
	code, out, errOut := r.code, r.stdout, r.stderr
	if code != exitFail {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	var listed []string
	for _, l := range strings.Split(out, "\n") {
		if no, ok := strings.CutPrefix(l, "  "); ok {
			listed = append(listed, no)
		}
	}
	var want []string
	for no := range missing {
		want = append(want, no)
	}
	slices.Sort(want)
	want = append(want, "UNDECLARED-1", "UNDECLARED-2")
	if !slices.Equal(listed, want) {
		t.Errorf("listed %d orders:\n%v\nwant\n%v", len(listed), listed, want)
	}
	if !strings.Contains(out, "10000 declared orders, 9963 with a payment record, 37 without") ||
		!strings.Contains(out, "records of orders not declared, paid since "+today+": 2") {
		t.Errorf("output:\n%s", out)
	}

	r = runCLI(t, nil, "coverage", "--json", path)
	code, out = r.code, r.stdout
	var rep coverageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFail {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if rep.Declared != 10000 || rep.Recorded != 9963 || !slices.Equal(rep.Missing, want[:37]) || rep.Since != today || len(rep.Undeclared) != 2 {
		t.Errorf("JSON report %+v", rep)
	}

	t.Run("ok all recorded", func(t *testing.T) {
		r := runCLI(t, []byte("CVG00001\nCVG00002\n"), "coverage", "-")
		code, out, errOut := r.code, r.stdout, r.stderr
		if code != exitOK || !strings.Contains(out, "2 declared orders, 2 with a payment record, 0 without") {
			t.Errorf("exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("fail unreadable line", func(t *testing.T) {
		r := runCLI(t, []byte("CVG00001\n{\"orderNo\":\"x\",\"paid\":1}\n"), "coverage", "-")
		code, errOut := r.code, r.stderr
		if code != exitUsage || !strings.Contains(errOut, `line 2: malformed payment: unknown key "paid"`) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}
