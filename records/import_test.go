package records_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ceb179/ceb179/records"
)

// paymentLine returns the JSON line of a valid single-order payment number i.
func paymentLine(tb testing.TB, i int) string {
	tb.Helper()
	p := mustParse(tb, "single.json")
	p.PayTransactionID = fmt.Sprintf("PAY%08d", i)
	p.Orders[0].OrderNo = fmt.Sprintf("ORD%08d", i)
	b, err := p.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestImport(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	for i := range 250 {
		switch i {
		case 10:
			in.WriteString("\n") // blank: skipped, not counted
		case 20:
			in.WriteString(strings.Replace(paymentLine(t, i), `"currency":"142"`, `"currency":""`, 1) + "\n")
		case 30:
			in.WriteString("{not json\n")
		case 40:
			in.WriteString(paymentLine(t, 39) + "\r\n") // repeated line: a duplicate
		default:
			in.WriteString(paymentLine(t, i) + "\n")
		}
	}
	in.WriteString(paymentLine(t, 1000)) // no final line end

	store := newMemStore()
	var (
		mu       sync.Mutex
		refusals []records.Refusal
		progress int64
	)
	opts := records.ImportOptions{
		BatchSize: 7,
		Workers:   3,
		Refused: func(r records.Refusal) {
			mu.Lock()
			refusals = append(refusals, r)
			mu.Unlock()
		},
		Progress: func(n int64) { progress = n },
	}
	sum, err := records.Import(context.Background(), strings.NewReader(in.String()), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := records.Summary{Lines: 250, Imported: 247, Duplicates: 1, Refused: 2}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if progress != int64(in.Len()) {
		t.Errorf("progress %d, want %d", progress, in.Len())
	}
	sort.Slice(refusals, func(i, j int) bool { return refusals[i].Line < refusals[j].Line })
	if len(refusals) != 2 || refusals[0].Line != 21 || refusals[1].Line != 31 ||
		refusals[0].PayTransactionID != "PAY00000020" || !strings.Contains(refusals[0].Reasons[0], "currency: required") {
		t.Errorf("refusals %+v", refusals)
	}

	// Run again: nothing new.
	sum, err = records.Import(context.Background(), strings.NewReader(in.String()), store, records.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (records.Summary{Lines: 250, Duplicates: 248, Refused: 2}); sum != want {
		t.Errorf("second run %+v, want %+v", sum, want)
	}
}

func TestImportStoreFailure(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	store.fail = errors.New("table not found")
	var in strings.Builder
	for i := range 50 {
		in.WriteString(paymentLine(t, i) + "\n")
	}
	sum, err := records.Import(context.Background(), strings.NewReader(in.String()), store, records.ImportOptions{BatchSize: 10, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "table not found") {
		t.Fatalf("err = %v", err)
	}
	if sum.Imported != 0 || sum.Failed == 0 {
		t.Errorf("summary %+v", sum)
	}
}

func TestImportLongLine(t *testing.T) {
	t.Parallel()
	long := `{"note":"` + strings.Repeat("x", records.MaxLineBytes) + `"}`
	in := paymentLine(t, 1) + "\n" + long + "\n" + paymentLine(t, 2) + "\n"
	var refusals []records.Refusal
	sum, err := records.Import(context.Background(), strings.NewReader(in), newMemStore(), records.ImportOptions{
		Refused: func(r records.Refusal) { refusals = append(refusals, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 2 || sum.Refused != 1 || len(refusals) != 1 || refusals[0].Line != 2 {
		t.Errorf("summary %+v, refusals %+v", sum, refusals)
	}
}
