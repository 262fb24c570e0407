package customs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// vectorWith builds a payExInfoStr from the vector with one substitution, for
// failure cases.
func vectorWith(t *testing.T, old, new string) string {
	t.Helper()
	in := string(readVector(t))
	if !strings.Contains(in, old) {
		t.Fatalf("vector lacks %q", old)
	}
	return strings.Replace(in, old, new, 1)
}

const minimalHead = `{"guid":"G","initalRequest":"a","initalResponse":"b","ebpCode":"e","payCode":"p","payTransactionId":"t","totalAmount":1,"currency":"142","verDept":"3","payType":"","tradingTime":"20190304013138","note":""}`
const minimalLists = `[{"orderNo":"1","goodsInfo":[{"gname":"g","itemLink":"l"}],"recpAccount":"a","recpCode":"","recpName":"n"}]`

func minimal(head, lists, rest string) string {
	return `{"sessionID":"S","payExchangeInfoHead":` + head + `,"payExchangeInfoLists":` + lists + rest + `}`
}

func TestReadPayExInfoStr(t *testing.T) {
	okRest := `,"serviceTime":"1","certNo":"c","signValue":"s"`
	tests := []struct {
		name     string
		in       func(t *testing.T) string
		wantKind error
		wantMsg  string
		check    func(t *testing.T, r *Received)
	}{
		{name: "ok vector", in: func(t *testing.T) string { return string(readVector(t)) }},
		{name: "ok surrounding white space", in: func(t *testing.T) string { return "\n\t " + string(readVector(t)) + "\r\n" }},
		{name: "ok keys in other order and pretty", in: func(t *testing.T) string {
			return "{\n \"signValue\": \"s\",\n \"certNo\": \"c\",\n \"serviceTime\": \"1\",\n \"payExchangeInfoLists\": " + minimalLists +
				",\n \"payExchangeInfoHead\": " + minimalHead + ",\n \"sessionID\": \"S\"\n}"
		}, check: func(t *testing.T, r *Received) {
			if string(r.Head) != minimalHead || string(r.Lists) != minimalLists {
				t.Errorf("raw bytes not kept")
			}
		}},
		{name: "ok serviceTime as number", in: func(t *testing.T) string {
			return vectorWith(t, `"serviceTime":"1601282210417"`, `"serviceTime":1601282210417`)
		}, check: func(t *testing.T, r *Received) {
			if r.ServiceTime != "1601282210417" || !r.ServiceTimeNumber {
				t.Errorf("serviceTime %q number=%v", r.ServiceTime, r.ServiceTimeNumber)
			}
			if !bytes.HasSuffix(r.SignSource(), []byte(`"serviceTime":"1601282210417"`)) {
				t.Errorf("sign source does not quote serviceTime")
			}
		}},
		{name: "ok head with inner white space kept", in: func(t *testing.T) string {
			return minimal(`{ "guid" : "G",  "totalAmount" : 1.50 }`, minimalLists, okRest)
		}, check: func(t *testing.T, r *Received) {
			if string(r.Head) != `{ "guid" : "G",  "totalAmount" : 1.50 }` || r.Decoded.Head.TotalAmount != "1.50" {
				t.Errorf("head %s amount %s", r.Head, r.Decoded.Head.TotalAmount)
			}
		}},
		{name: "ok escaped strings decoded, raw kept", in: func(t *testing.T) string {
			return minimal(`{"guid":"\u0047\/"}`, minimalLists, `,"serviceTime":"1","certNo":"\u0063","signValue":"a\/b"`)
		}, check: func(t *testing.T, r *Received) {
			if r.Decoded.Head.GUID != "G/" || r.CertNo != "c" || r.SignValue != "a/b" || string(r.Head) != `{"guid":"\u0047\/"}` {
				t.Errorf("got guid %q certNo %q signValue %q head %s", r.Decoded.Head.GUID, r.CertNo, r.SignValue, r.Head)
			}
		}},

		{name: "fail empty", in: func(*testing.T) string { return " " }, wantKind: ErrMissing, wantMsg: "payExInfoStr: empty"},
		{name: "fail not JSON", in: func(*testing.T) string { return "payExInfoStr=%7B" }, wantKind: ErrMalformed, wantMsg: "payExInfoStr: not JSON (syntax error at byte 1)"},
		{name: "fail truncated", in: func(t *testing.T) string { return string(readVector(t)[:500]) }, wantKind: ErrMalformed, wantMsg: "payExInfoStr: not JSON (syntax error at byte 500)"},
		{name: "fail trailing data", in: func(t *testing.T) string { return string(readVector(t)) + "{}" }, wantKind: ErrMalformed, wantMsg: "payExInfoStr: not JSON (syntax error at byte 2061)"},
		{name: "fail array", in: func(*testing.T) string { return "[]" }, wantKind: ErrMalformed, wantMsg: "payExInfoStr: top level must be a JSON object"},
		{name: "fail not UTF-8", in: func(t *testing.T) string { return vectorWith(t, "济州", "\xbc\xc3") }, wantKind: ErrMalformed, wantMsg: "payExInfoStr: not valid UTF-8"},
		{name: "fail too large", in: func(*testing.T) string { return `{"x":"` + strings.Repeat("x", MaxPayExInfoStr) + `"}` }, wantKind: ErrTooLarge, wantMsg: "payExInfoStr: larger than 4194304 bytes"},
		{name: "fail singular lists key", in: func(t *testing.T) string { return vectorWith(t, `"payExchangeInfoLists"`, `"payExchangeInfoList"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: top level: unknown key "payExchangeInfoList" (the key is "payExchangeInfoLists")`},
		{name: "fail key in other case", in: func(t *testing.T) string { return vectorWith(t, `"sessionID"`, `"sessionId"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: top level: unknown key "sessionId" (the key is "sessionID")`},
		{name: "fail key upper case", in: func(t *testing.T) string { return vectorWith(t, `"certNo"`, `"CERTNO"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: top level: unknown key "CERTNO" (keys are case sensitive: "certNo")`},
		{name: "fail unknown key", in: func(t *testing.T) string { return vectorWith(t, `"certNo"`, `"extra":1,"certNo"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: top level: unknown key "extra"`},
		{name: "fail long unknown key cut short", in: func(t *testing.T) string {
			return vectorWith(t, `"certNo"`, `"`+strings.Repeat("k", 500)+`":1,"certNo"`)
		},
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: top level: unknown key "` + strings.Repeat("k", 32) + `…"`},
		{name: "fail duplicate key", in: func(t *testing.T) string { return vectorWith(t, `"certNo"`, `"sessionID":"other","certNo"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: top level: key "sessionID" given more than once`},
		{name: "fail missing sessionID", in: func(t *testing.T) string {
			return vectorWith(t, `"sessionID":"IHWESX-WEASLEY-20230712210643-X7E4PL",`, ``)
		}, wantKind: ErrMissing, wantMsg: "payExInfoStr: missing sessionID"},
		{name: "fail missing lists", in: func(*testing.T) string { return `{"sessionID":"S","payExchangeInfoHead":{}}` }, wantKind: ErrMissing, wantMsg: "payExInfoStr: missing payExchangeInfoLists"},
		{name: "fail missing certNo", in: func(*testing.T) string {
			return minimal(minimalHead, minimalLists, `,"serviceTime":"1","signValue":"s"`)
		},
			wantKind: ErrMissing, wantMsg: "payExInfoStr: missing certNo"},
		{name: "fail missing signValue", in: func(*testing.T) string { return minimal(minimalHead, minimalLists, `,"serviceTime":"1","certNo":"c"`) },
			wantKind: ErrMissing, wantMsg: "payExInfoStr: missing signValue"},
		{name: "fail certNo a number", in: func(*testing.T) string {
			return minimal(minimalHead, minimalLists, `,"serviceTime":"1","certNo":1,"signValue":"s"`)
		},
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: certNo must be a JSON string"},
		{name: "fail sessionID null", in: func(t *testing.T) string {
			return vectorWith(t, `"sessionID":"IHWESX-WEASLEY-20230712210643-X7E4PL"`, `"sessionID":null`)
		},
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: sessionID must be a JSON string"},
		{name: "fail serviceTime empty", in: func(t *testing.T) string { return vectorWith(t, `"1601282210417"`, `""`) },
			wantKind: ErrMissing, wantMsg: "payExInfoStr: missing serviceTime"},
		{name: "fail serviceTime fraction", in: func(t *testing.T) string { return vectorWith(t, `"1601282210417"`, `1601282210417.0`) },
			wantKind: ErrInvalid, wantMsg: "payExInfoStr: serviceTime must be decimal digits (milliseconds since the epoch)"},
		{name: "fail serviceTime with dashes", in: func(t *testing.T) string { return vectorWith(t, `"1601282210417"`, `"2020-09-28"`) },
			wantKind: ErrInvalid, wantMsg: "payExInfoStr: serviceTime must be decimal digits (milliseconds since the epoch)"},
		{name: "fail head as string", in: func(*testing.T) string {
			return minimal(`"`+strings.ReplaceAll(minimalHead, `"`, `\"`)+`"`, minimalLists, okRest)
		},
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoHead must be a JSON object"},
		{name: "fail lists an object", in: func(*testing.T) string { return minimal(minimalHead, `{}`, okRest) },
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoLists must be a JSON array"},
		{name: "fail quoted totalAmount", in: func(t *testing.T) string { return vectorWith(t, `"totalAmount":5.0`, `"totalAmount":"5.0"`) },
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoHead.totalAmount must be a JSON number, not a string"},
		{name: "fail null totalAmount", in: func(t *testing.T) string { return vectorWith(t, `"totalAmount":5.0`, `"totalAmount":null`) },
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoHead.totalAmount must be a JSON number"},
		{name: "fail head field a number", in: func(t *testing.T) string { return vectorWith(t, `"verDept":"3"`, `"verDept":3`) },
			wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoHead.verDept must be a JSON string"},
		{name: "fail unknown head key", in: func(t *testing.T) string { return vectorWith(t, `"payTransactionId"`, `"payTransactionID"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: payExchangeInfoHead: unknown key "payTransactionID" (the key is "payTransactionId")`},
		{name: "fail duplicate head key", in: func(t *testing.T) string { return vectorWith(t, `"note":""`, `"note":"","note":"x"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: payExchangeInfoHead: key "note" given more than once`},
		{name: "fail unknown order key", in: func(t *testing.T) string { return vectorWith(t, `"recpCode"`, `"recpcode"`) },
			wantKind: ErrMalformed, wantMsg: `payExInfoStr: payExchangeInfoLists[0]: unknown key "recpcode" (keys are case sensitive: "recpCode")`},
		{name: "fail goods not array", in: func(*testing.T) string {
			return minimal(minimalHead, `[{"orderNo":"1","goodsInfo":{"gname":"g"}}]`, okRest)
		}, wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoLists[0].goodsInfo must be a JSON array"},
		{name: "fail goods entry not object", in: func(*testing.T) string {
			return minimal(minimalHead, `[{"orderNo":"1"},{"goodsInfo":[{"gname":"g"},"x"]}]`, okRest)
		}, wantKind: ErrMalformed, wantMsg: "payExInfoStr: payExchangeInfoLists[1].goodsInfo[1] must be a JSON object"},
		{name: "fail goods unknown key", in: func(*testing.T) string {
			return minimal(minimalHead, `[{"goodsInfo":[{"gname":"g","itemlink":"l"}]}]`, okRest)
		}, wantKind: ErrMalformed, wantMsg: `payExInfoStr: payExchangeInfoLists[0].goodsInfo[0]: unknown key "itemlink" (keys are case sensitive: "itemLink")`},
		{name: "fail itemLink a number", in: func(*testing.T) string {
			return minimal(minimalHead, `[{"goodsInfo":[{"gname":"g","itemLink":5}]}]`, okRest)
		}, wantKind: ErrMalformed, wantMsg: `payExInfoStr: payExchangeInfoLists[0].goodsInfo[0].itemLink must be a JSON string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadPayExInfoStr([]byte(tt.in(t)))
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("ReadPayExInfoStr: %v", err)
				}
				if tt.check != nil {
					tt.check(t, r)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadPayExInfoStr succeeded, want error %q", tt.wantMsg)
			}
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("error %q is not %v", err, tt.wantKind)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("message\n got %q\nwant %q", err, tt.wantMsg)
			}
		})
	}
}

func TestReadDocument(t *testing.T) {
	base := minimal(minimalHead, minimalLists, `,"serviceTime":1553047681000`)
	tests := []struct {
		name    string
		in      string
		wantMsg string
		check   func(t *testing.T, d *Document)
	}{
		{name: "ok minimal", in: base, check: func(t *testing.T, d *Document) {
			if d.SessionID != "S" || d.ServiceTime != "1553047681000" || d.Head.TotalAmount != "1" || len(d.Lists) != 1 {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "ok byte order mark", in: "\uFEFF" + base},
		{name: "ok certNo and signValue ignored", in: minimal(minimalHead, minimalLists, `,"serviceTime":"1","certNo":"old","signValue":"old"`)},
		{name: "ok missing head keys read as empty", in: minimal(`{"totalAmount":2.50}`, `[{}]`, `,"serviceTime":"1"`), check: func(t *testing.T, d *Document) {
			if d.Head.GUID != "" || d.Head.TotalAmount != "2.50" || d.Lists[0].GoodsInfo != nil {
				t.Errorf("got %+v", d)
			}
			if err := d.Validate(); err == nil {
				t.Error("Validate accepted a document with missing fields")
			}
		}},
		{name: "fail missing serviceTime", in: minimal(minimalHead, minimalLists, ""), wantMsg: "document: missing serviceTime"},
		{name: "fail certNo a number", in: minimal(minimalHead, minimalLists, `,"serviceTime":"1","certNo":5`), wantMsg: "document: certNo must be a JSON string"},
		{name: "fail singular lists key", in: `{"sessionID":"S","payExchangeInfoHead":{},"payExchangeInfoList":[],"serviceTime":"1"}`,
			wantMsg: `document: top level: unknown key "payExchangeInfoList" (the key is "payExchangeInfoLists")`},
		{name: "fail amount as string", in: minimal(`{"totalAmount":"88.08"}`, minimalLists, `,"serviceTime":"1"`),
			wantMsg: "document: payExchangeInfoHead.totalAmount must be a JSON number, not a string"},
		{name: "fail misspelt head key", in: minimal(`{"initialRequest":"x"}`, minimalLists, `,"serviceTime":"1"`),
			wantMsg: `document: payExchangeInfoHead: unknown key "initialRequest" (the key is "initalRequest")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ReadDocument([]byte(tt.in))
			if tt.wantMsg != "" {
				if err == nil || err.Error() != tt.wantMsg {
					t.Errorf("got error %v, want %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadDocument: %v", err)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestUnsignedCheck(t *testing.T) {
	good := Unsigned{SessionID: "S", Head: []byte(minimalHead), Lists: []byte(minimalLists), ServiceTime: "1"}
	tests := []struct {
		name    string
		change  func(u *Unsigned)
		wantMsg string
	}{
		{name: "ok good"},
		{name: "fail no sessionID", change: func(u *Unsigned) { u.SessionID = "" }, wantMsg: "unsigned: missing sessionID"},
		{name: "fail serviceTime", change: func(u *Unsigned) { u.ServiceTime = "x" }, wantMsg: "unsigned: serviceTime must be decimal digits (milliseconds since the epoch)"},
		{name: "fail head not JSON", change: func(u *Unsigned) { u.Head = []byte(`{"a":`) }, wantMsg: "unsigned: payExchangeInfoHead: not a JSON object"},
		{name: "fail head with white space around", change: func(u *Unsigned) { u.Head = []byte(" {}") }, wantMsg: "unsigned: payExchangeInfoHead: not a JSON object"},
		{name: "fail lists an object", change: func(u *Unsigned) { u.Lists = []byte(`{}`) }, wantMsg: "unsigned: payExchangeInfoLists: not a JSON array"},
		{name: "fail lists not UTF-8", change: func(u *Unsigned) { u.Lists = []byte("[\"\xff\"]") }, wantMsg: "unsigned: payExchangeInfoLists: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := good
			if tt.change != nil {
				tt.change(&u)
			}
			err := u.Check()
			if tt.wantMsg == "" {
				if err != nil {
					t.Errorf("Check: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantMsg {
				t.Errorf("got %v, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestSignSourceShape(t *testing.T) {
	u := Unsigned{SessionID: `s"1`, Head: []byte(`{"a":"<&>"}`), Lists: []byte(`[]`), ServiceTime: "42"}
	want := `"sessionID":"s"1"||"payExchangeInfoHead":"{"a":"<&>"}"||"payExchangeInfoLists":"[]"||"serviceTime":"42"`
	if got := string(u.SignSource()); got != want {
		t.Errorf("SignSource:\n got %s\nwant %s", got, want)
	}
	wantDoc := `{"sessionID":"s\"1","payExchangeInfoHead":{"a":"<&>"},"payExchangeInfoLists":[],"serviceTime":"42","certNo":"c","signValue":"a+b/="}`
	if got := string(u.PayExInfoStr("c", "a+b/=")); got != wantDoc {
		t.Errorf("PayExInfoStr:\n got %s\nwant %s", got, wantDoc)
	}
	if d := u.Digest(); len(d) != 64 || strings.ToLower(d) != d {
		t.Errorf("Digest = %q, want 64 lower-case hex digits", d)
	}
}

func TestNewUnsigned(t *testing.T) {
	u, err := NewUnsigned("S1", validHead(), validOrders(), time.UnixMilli(1553047681000))
	if err != nil {
		t.Fatal(err)
	}
	if u.ServiceTime != "1553047681000" || u.SessionID != "S1" {
		t.Errorf("got sessionID %q serviceTime %q", u.SessionID, u.ServiceTime)
	}
	head, _ := MarshalHead(validHead())
	if !bytes.Equal(u.Head, head) {
		t.Errorf("head is not the canonical head")
	}
	if _, err := NewUnsigned("S1", Head{}, nil, time.Now()); err == nil {
		t.Error("NewUnsigned accepted a head without totalAmount")
	}
}

func TestLoneSurrogates(t *testing.T) {
	tests := []struct {
		name    string
		value   string // JSON string literal for payExchangeInfoHead.note
		wantErr bool
	}{
		{"ok pair", `"\ud83d\ude00"`, false},
		{"ok pair upper-case hex", `"\uD83D\uDE00"`, false},
		{"ok escaped backslash before u", `"\\ud800"`, false},
		{"ok replacement character itself", `"\ufffd"`, false},
		{"fail lone high", `"a\ud800b"`, true},
		{"fail lone high at end", `"\ud800"`, true},
		{"fail lone low", `"\udc00"`, true},
		{"fail high followed by non-surrogate", `"\ud800\u0041"`, true},
		{"fail two highs", `"\ud800\ud800\udc00"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := minimal(`{"note":`+tt.value+`}`, minimalLists, `,"serviceTime":"1"`)
			_, err := ReadDocument([]byte(in))
			if tt.wantErr {
				want := "document: payExchangeInfoHead.note holds an unpaired surrogate escape"
				if err == nil || err.Error() != want {
					t.Errorf("got %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Errorf("ReadDocument: %v", err)
			}
		})
	}
}
