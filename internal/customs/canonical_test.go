package customs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/canonical")

// Test certNo and signValue embedded in golden payExInfoStr files.
const (
	goldenCertNo    = "0123456789abcdef"
	goldenSignValue = "c2lnbmF0dXJlK2Jhc2U2NC8="
)

// golden compares got with the golden file testdata/canonical/<name>, or
// rewrites the file when -update is given.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "canonical", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got %s\nwant %s", name, got, want)
	}
}

func readCanonicalInput(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCanonicalGolden turns documents written in any JSON style into the
// canonical sign source and payExInfoStr, compares both with golden files,
// and checks that the payExInfoStr reads back to the same sign source and
// the same values, and that canonicalising it again changes nothing.
func TestCanonicalGolden(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"ok messy input", "canonical/messy.json"},
		{"ok raw data survives", "canonical/rawdata.json"},
		{"ok accepted vector", "vectors/sm2-accepted-payExInfoStr.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := strings.TrimSuffix(filepath.Base(tt.input), ".json")
			d, err := ReadDocument(readCanonicalInput(t, tt.input))
			if err != nil {
				t.Fatalf("ReadDocument: %v", err)
			}
			if err := d.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			u, err := d.Canonical()
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			golden(t, base+".signsource", u.SignSource())
			doc := u.PayExInfoStr(goldenCertNo, goldenSignValue)
			golden(t, base+".payexinfostr", doc)

			r, err := ReadPayExInfoStr(doc)
			if err != nil {
				t.Fatalf("ReadPayExInfoStr: %v", err)
			}
			if !bytes.Equal(r.SignSource(), u.SignSource()) {
				t.Errorf("read-back sign source differs")
			}
			if r.CertNo != goldenCertNo || r.SignValue != goldenSignValue {
				t.Errorf("read-back certNo/signValue = %q/%q", r.CertNo, r.SignValue)
			}
			if !reflect.DeepEqual(r.Decoded, *d) {
				t.Errorf("read-back values differ:\n got %+v\nwant %+v", r.Decoded, *d)
			}
			d2, err := ReadDocument(doc)
			if err != nil {
				t.Fatal(err)
			}
			u2, err := d2.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(u2.SignSource(), u.SignSource()) {
				t.Errorf("canonical form is not stable")
			}
			if err := u.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// TestRawDataSurvives checks value by value that the special characters of
// rawdata.json are decoded as written and appear unescaped in the canonical
// bytes.
func TestRawDataSurvives(t *testing.T) {
	d, err := ReadDocument(readCanonicalInput(t, "canonical/rawdata.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantReq := "POST /pay HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" +
		`{"amount":"12.30","desc":"a<b>&c","path":"C:\\pay\\n"}` + "\tend\x01\x1f\x7f"
	if d.Head.InitalRequest != wantReq {
		t.Errorf("initalRequest = %q, want %q", d.Head.InitalRequest, wantReq)
	}
	wantResp := `<resp code="0">成功 ✓ 😀 ` + "\u2028line\u2029para" + ` &amp; &lt;tag&gt; \u4e2d</resp>`
	if d.Head.InitalResponse != wantResp {
		t.Errorf("initalResponse = %q, want %q", d.Head.InitalResponse, wantResp)
	}
	if d.Head.TotalAmount != "12.30000" {
		t.Errorf("totalAmount = %q, want 12.30000", d.Head.TotalAmount)
	}
	head, err := MarshalHead(d.Head)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := MarshalLists(d.Lists)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"initalRequest":"POST /pay HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"amount\":\"12.30\",\"desc\":\"a<b>&c\",\"path\":\"C:\\\\pay\\\\n\"}\tend\u0001\u001f` + "\x7f\"",
		`"initalResponse":"<resp code=\"0\">成功 ✓ 😀 ` + "\u2028line\u2029para" + ` &amp; &lt;tag&gt; \\u4e2d</resp>"`,
		`"payTransactionId":"T-2019/03/04#1","totalAmount":12.30000,"currency":"142","verDept":"3","payType":""`,
		`"note":"备注: 'single' \"double\" back\\slash\ttab\nnewline"}`,
	} {
		if !bytes.Contains(head, []byte(want)) {
			t.Errorf("head lacks %s\nhead: %s", want, head)
		}
	}
	wantLists := `[{"orderNo":"订单-1","goodsInfo":[{"gname":"Crème <brûlée> & \"Co\" 🍮","itemLink":"https://例子.中国/item?a=1&b=2#frag;https://x.example/y?q=%E4%B8%AD"}],"recpAccount":"acct/1","recpCode":"","recpName":"株式会社テスト"}]`
	if string(lists) != wantLists {
		t.Errorf("lists:\n got %s\nwant %s", lists, wantLists)
	}
}

func TestMarshalHeadKeyOrder(t *testing.T) {
	h := Head{GUID: "G", InitalRequest: "a", InitalResponse: "b", EbpCode: "c", PayCode: "d", PayTransactionID: "e",
		TotalAmount: "88.08", Currency: "142", VerDept: "3", PayType: "1", TradingTime: "20190304013138", Note: "n"}
	got, err := MarshalHead(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"guid":"G","initalRequest":"a","initalResponse":"b","ebpCode":"c","payCode":"d","payTransactionId":"e","totalAmount":88.08,"currency":"142","verDept":"3","payType":"1","tradingTime":"20190304013138","note":"n"}`
	if string(got) != want {
		t.Errorf("MarshalHead:\n got %s\nwant %s", got, want)
	}
	// encoding/json with the struct tags gives the same bytes here.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(buf.String(), "\n"); got != want {
		t.Errorf("json.Encoder:\n got %s\nwant %s", got, want)
	}
}

func TestMarshalLists(t *testing.T) {
	tests := []struct {
		name   string
		orders []Order
		want   string
	}{
		{"ok nil", nil, `[]`},
		{"ok order without goods", []Order{{OrderNo: "1"}}, `[{"orderNo":"1","goodsInfo":[],"recpAccount":"","recpCode":"","recpName":""}]`},
		{"ok two orders", []Order{
			{OrderNo: "1", GoodsInfo: []Goods{{Gname: "a", ItemLink: "l1"}, {Gname: "b", ItemLink: "l2"}}, RecpAccount: "x", RecpCode: "y", RecpName: "z"},
			{OrderNo: "2", GoodsInfo: []Goods{{Gname: "c", ItemLink: "l3"}}, RecpAccount: "x", RecpName: "z"},
		}, `[{"orderNo":"1","goodsInfo":[{"gname":"a","itemLink":"l1"},{"gname":"b","itemLink":"l2"}],"recpAccount":"x","recpCode":"y","recpName":"z"},` +
			`{"orderNo":"2","goodsInfo":[{"gname":"c","itemLink":"l3"}],"recpAccount":"x","recpCode":"","recpName":"z"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalLists(tt.orders)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := Head{TotalAmount: "1"}
	tests := []struct {
		name    string
		marshal func() ([]byte, error)
		wantErr string
	}{
		{"fail head not UTF-8", func() ([]byte, error) { h := ok; h.Note = "a\xffb"; return MarshalHead(h) }, "note: not valid UTF-8"},
		{"fail head empty amount", func() ([]byte, error) { return MarshalHead(Head{}) }, "totalAmount: not a JSON number"},
		{"fail head amount with spaces", func() ([]byte, error) { return MarshalHead(Head{TotalAmount: " 1"}) }, "totalAmount: not a JSON number"},
		{"fail head amount injection", func() ([]byte, error) { return MarshalHead(Head{TotalAmount: `1,"x":2`}) }, "totalAmount: not a JSON number"},
		{"fail lists not UTF-8", func() ([]byte, error) {
			return MarshalLists([]Order{{OrderNo: "1", GoodsInfo: []Goods{{Gname: "\xc3"}}}})
		}, "gname: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.marshal()
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("got %q, %v; want error %q", b, err, tt.wantErr)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"ok empty", "", `""`},
		{"ok plain", "abc", `"abc"`},
		{"ok quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"ok short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"ok other controls", "\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"ok DEL unescaped", "\x7f", "\"\x7f\""},
		{"ok html unescaped", "<a href='x'>&amp;</a>", `"<a href='x'>&amp;</a>"`},
		{"ok slash unescaped", "http://x/y", `"http://x/y"`},
		{"ok CJK and emoji unescaped", "中文😀", `"中文😀"`},
		{"ok line separators unescaped", "\u2028\u2029", "\"\u2028\u2029\""},
		{"ok backslash-u text", `\u4e2d`, `"\\u4e2d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendJSONString([]byte("x"), tt.in))
			if got != "x"+tt.want {
				t.Errorf("got %s, want x%s", got, tt.want)
			}
			var back string
			if err := json.Unmarshal([]byte(tt.want), &back); err != nil || back != tt.in {
				t.Errorf("decodes to %q, %v; want %q", back, err, tt.in)
			}
		})
	}
}

// TestAppendJSONStringMatchesEncodingJSON compares the escaper with
// encoding/json (HTML escaping off) for every ASCII character and some
// non-ASCII text. They differ only for U+2028 and U+2029, which
// encoding/json escapes and the canonical form does not.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	var inputs []string
	for c := 0; c < utf8.RuneSelf; c++ {
		inputs = append(inputs, string(rune(c)), "a"+string(rune(c))+"b")
	}
	inputs = append(inputs, "中文", "😀", "é", "\ufeff", "\ufffd")
	for _, s := range inputs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(AppendJSONString(nil, s)); got != want {
			t.Errorf("%q: got %s, encoding/json %s", s, got, want)
		}
	}
}
