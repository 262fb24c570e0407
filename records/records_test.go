package records_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/records"
)

// readFixture returns a payment line from testdata.
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// mustParse parses a fixture.
func mustParse(tb testing.TB, name string) records.Payment {
	tb.Helper()
	p, err := records.ParsePayment(readFixture(tb, name))
	if err != nil {
		tb.Fatalf("ParsePayment(%s): %v", name, err)
	}
	return p
}

func TestParsePayment(t *testing.T) {
	t.Parallel()
	single := string(readFixture(t, "single.json"))
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, p records.Payment)
	}{
		{name: "ok single order", in: single, check: func(t *testing.T, p records.Payment) {
			if p.PayTransactionID != "2019030422001434180520096410" || p.TotalAmount != "88.08" || len(p.Orders) != 1 {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "ok amount text kept", in: string(readFixture(t, "multi.json")), check: func(t *testing.T, p records.Payment) {
			if p.TotalAmount != "5.0" || len(p.Orders) != 3 || p.Orders[0].OrderNo != "ord-B-0002" {
				t.Errorf("got amount %q, %d orders", p.TotalAmount, len(p.Orders))
			}
		}},
		{name: "ok missing fields read as empty", in: `{"payTransactionId":"X"}`, check: func(t *testing.T, p records.Payment) {
			if p.PayTransactionID != "X" || len(p.Orders) != 0 {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "fail guid", in: strings.Replace(single, `{"initalRequest"`, `{"guid":"A","initalRequest"`, 1), wantErr: `unknown key "guid"`},
		{name: "fail quoted amount", in: strings.Replace(single, `"totalAmount":88.08`, `"totalAmount":"88.08"`, 1), wantErr: "must be a JSON number"},
		{name: "fail misspelt key", in: strings.Replace(single, `"initalRequest"`, `"initialRequest"`, 1), wantErr: `(the key is "initalRequest")`},
		{name: "fail singular lists", in: strings.Replace(single, `"payExchangeInfoLists"`, `"payExchangeInfoList"`, 1), wantErr: `the key is "payExchangeInfoLists"`},
		{name: "fail repeated key", in: strings.Replace(single, `"note":`, `"ebpCode":"A","note":`, 1), wantErr: "more than once"},
		{name: "fail unknown key in order", in: strings.Replace(single, `"recpName"`, `"recpname":"x","recpName"`, 1), wantErr: `unknown key "recpname"`},
		{name: "fail number as text field", in: strings.Replace(single, `"currency":"142"`, `"currency":142`, 1), wantErr: "must be a JSON string"},
		{name: "fail not an object", in: `[1,2]`, wantErr: "not a JSON object"},
		{name: "fail truncated", in: single[:len(single)-2], wantErr: "not a JSON object"},
		{name: "fail empty", in: ``, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := records.ParsePayment([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, records.ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

func TestMarshalJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"single.json", "multi.json"} {
		t.Run("ok "+name, func(t *testing.T) {
			t.Parallel()
			in := readFixture(t, name)
			p := mustParse(t, name)
			out, err := p.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Errorf("MarshalJSON =\n%s\nwant\n%s", out, in)
			}
			d1, _ := p.Digest()
			p.Note += "x"
			d2, _ := p.Digest()
			if d1 == d2 || len(d1) != 64 {
				t.Errorf("digests %q %q", d1, d2)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(p *records.Payment)
		want   []string // violation paths, in order
	}{
		{name: "ok single", change: func(*records.Payment) {}},
		{name: "fail every head field", change: func(p *records.Payment) {
			p.InitalRequest = ""
			p.EbpCode = strings.Repeat("E", 19)
			p.TotalAmount = "1.123456"
			p.VerDept = "4"
			p.TradingTime = "2019-03-04 01:31:38"
		}, want: []string{
			"payExchangeInfoHead.initalRequest", "payExchangeInfoHead.ebpCode", "payExchangeInfoHead.totalAmount",
			"payExchangeInfoHead.verDept", "payExchangeInfoHead.tradingTime",
		}},
		{name: "fail orders", change: func(p *records.Payment) {
			p.Orders = append(p.Orders, p.Orders[0])
			p.Orders[0].GoodsInfo = nil
			p.Orders[0].RecpName = " "
		}, want: []string{
			"payExchangeInfoLists[0].goodsInfo", "payExchangeInfoLists[0].recpName", "payExchangeInfoLists[1].orderNo",
		}},
		{name: "fail no orders", change: func(p *records.Payment) { p.Orders = nil }, want: []string{"payExchangeInfoLists"}},
		{name: "fail too many orders", change: func(p *records.Payment) {
			o := p.Orders[0]
			p.Orders = nil
			for i := range records.MaxOrders + 1 {
				o.OrderNo = fmt.Sprintf("o%d", i)
				p.Orders = append(p.Orders, o)
			}
		}, want: []string{"payExchangeInfoLists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, "single.json")
			tt.change(&p)
			err := p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *customs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			var got []string
			for _, v := range ve.Violations {
				got = append(got, v.Path)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("violations %q, want %q", got, tt.want)
			}
			if msg := strings.Join(records.Reasons(err), "; "); strings.Contains(msg, "6222021001115678") {
				t.Errorf("reasons repeat payment data: %s", msg)
			}
		})
	}
}

// memStore is an in-memory records.Store with the semantics of the
// DynamoDB one, for tests of the packages that consume a Store.
type memStore struct {
	mu     sync.Mutex
	heads  map[string]string // payTransactionId -> digest
	owners map[string]string // orderNo -> payTransactionId
	fail   error
	// failIDs fails the payments named, as many times as each says.
	failIDs map[string]int
}

func newMemStore() *memStore {
	return &memStore{heads: map[string]string{}, owners: map[string]string{}}
}

func (m *memStore) PutPayments(_ context.Context, ps []records.Payment) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := make([]error, len(ps))
	for i, p := range ps {
		if m.fail != nil {
			errs[i] = m.fail
			continue
		}
		if m.failIDs[p.PayTransactionID] > 0 {
			m.failIDs[p.PayTransactionID]--
			errs[i] = errors.New("store down")
			continue
		}
		d, _ := p.Digest()
		if old, ok := m.heads[p.PayTransactionID]; ok {
			errs[i] = records.ErrConflict
			if old == d {
				errs[i] = records.ErrDuplicate
			}
			continue
		}
		for _, o := range p.Orders {
			if owner, ok := m.owners[o.OrderNo]; ok {
				errs[i] = &records.OrderTakenError{OrderNo: o.OrderNo, Owner: owner}
				break
			}
		}
		if errs[i] != nil {
			continue
		}
		m.heads[p.PayTransactionID] = d
		for _, o := range p.Orders {
			m.owners[o.OrderNo] = p.PayTransactionID
		}
	}
	return errs
}

func TestRecorder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newMemStore()
	rec := records.NewRecorder(store)
	p := mustParse(t, "single.json")
	other := mustParse(t, "multi.json")

	changed := p
	changed.Note = "changed"
	stealer := other
	stealer.PayTransactionID = "another"
	stealer.Orders = append([]customs.Order{}, other.Orders...)
	stealer.Orders[1] = p.Orders[0]
	invalid := other
	invalid.PayTransactionID = "invalid"
	invalid.Currency = ""

	tests := []struct {
		name    string
		p       records.Payment
		want    records.Result
		wantErr error
	}{
		{name: "ok new", p: p, want: records.Recorded},
		{name: "ok duplicate", p: p, want: records.Duplicate},
		{name: "ok second payment", p: other, want: records.Recorded},
		{name: "fail conflict", p: changed, wantErr: records.ErrConflict},
		{name: "fail order taken", p: stealer, wantErr: records.ErrOrderTaken},
	}
	for _, tt := range tests {
		got, err := rec.Record(ctx, tt.p)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Record = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	t.Run("fail invalid", func(t *testing.T) {
		_, err := rec.Record(ctx, invalid)
		var ve *customs.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("err = %v, want ValidationError", err)
		}
		if _, ok := store.heads["invalid"]; ok {
			t.Error("an invalid payment was stored")
		}
	})
}
