package customs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzParseOpenReq checks that ParseOpenReq never panics, that its errors
// are short *ParseError values, and that whatever it accepts obeys the
// limits and survives a round trip through the form customs sends.
func FuzzParseOpenReq(f *testing.F) {
	for _, c := range openReqCases {
		f.Add(c.contentType, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r, err := ParseOpenReq(contentType, body)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if len(err.Error()) > 100 {
				t.Fatalf("error message longer than 100 bytes: %q", err)
			}
			return
		}
		checkOpenReqText(t, "orderNo", r.OrderNo, MaxOrderNoLen)
		checkOpenReqText(t, "sessionID", r.SessionID, MaxSessionIDLen)
		if r.ServiceTime < 0 {
			t.Fatalf("negative serviceTime %d", r.ServiceTime)
		}
		for _, again := range []struct {
			contentType string
			body        []byte
		}{{OpenReqContentType, r.Form()}, {"application/json", r.JSON()}} {
			back, err := ParseOpenReq(again.contentType, again.body)
			if err != nil {
				t.Fatalf("re-encoded openReq fails: %v", err)
			}
			if back != r {
				t.Fatalf("round trip changed %+v into %+v", r, back)
			}
		}
	})
}

func checkOpenReqText(t *testing.T, key, s string, maxLen int) {
	t.Helper()
	switch {
	case s == "":
		t.Fatalf("empty %s accepted", key)
	case !utf8.ValidString(s):
		t.Fatalf("%s not UTF-8", key)
	case utf8.RuneCountInString(s) > maxLen:
		t.Fatalf("%s longer than %d", key, maxLen)
	case strings.ContainsFunc(s, unicode.IsControl):
		t.Fatalf("%s holds control characters", key)
	}
}

// FuzzReadPayExInfoStr checks that ReadPayExInfoStr never panics and that a
// document it accepts, written again with PayExInfoStr, reads back to the
// same sign source, certNo, signValue and values; and that ReadDocument
// accepts it too and canonicalises it stably (a document without
// totalAmount has no canonical form).
func FuzzReadPayExInfoStr(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "canonical", "*"))
	seeds = append(seeds, filepath.Join("testdata", "vectors", "sm2-accepted-payExInfoStr.json"))
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	vector := string(readVector(f))
	for _, s := range []string{
		strings.Replace(vector, `"serviceTime":"1601282210417"`, `"serviceTime":1601282210417`, 1),
		strings.Replace(vector, `"totalAmount":5.0`, `"totalAmount":"5.0"`, 1),
		strings.Replace(vector, `"payExchangeInfoLists"`, `"payExchangeInfoList"`, 1),
		minimal(minimalHead, minimalLists, `,"serviceTime":"1","certNo":"c","signValue":"s"`),
		minimal(`{"guid":"\u0047\/","note":"\ud83d\ude00\u2028"}`, `[{},{"goodsInfo":[]}]`, `,"serviceTime":0,"certNo":"","signValue":""`),
		minimal(`{}`, `[]`, `,"serviceTime":"1","certNo":"\ud800","signValue":"\"\\"`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadPayExInfoStr(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if len(err.Error()) > 160 {
				t.Fatalf("error message longer than 160 bytes: %q", err)
			}
			return
		}
		if !bytes.Contains(b, r.Head) || !bytes.Contains(b, r.Lists) {
			t.Fatal("head or lists bytes are not taken from the input")
		}
		if r.SessionID != "" {
			if err := r.Check(); err != nil {
				t.Fatalf("Check of a read document: %v", err)
			}
		}
		doc := r.PayExInfoStr(r.CertNo, r.SignValue)
		if !json.Valid(doc) {
			t.Fatal("PayExInfoStr wrote invalid JSON")
		}
		back, err := ReadPayExInfoStr(doc)
		if err != nil {
			t.Fatalf("re-serialised document does not read: %v", err)
		}
		if !bytes.Equal(back.SignSource(), r.SignSource()) {
			t.Fatalf("sign source changed:\n got %q\nwant %q", back.SignSource(), r.SignSource())
		}
		if back.CertNo != r.CertNo || back.SignValue != r.SignValue {
			t.Fatal("certNo or signValue changed")
		}
		if !reflect.DeepEqual(back.Decoded, r.Decoded) {
			t.Fatalf("decoded values changed:\n got %+v\nwant %+v", back.Decoded, r.Decoded)
		}

		d, err := ReadDocument(b)
		if err != nil {
			t.Fatalf("ReadDocument refuses what ReadPayExInfoStr accepts: %v", err)
		}
		u, err := d.Canonical()
		if d.Head.TotalAmount == "" {
			// Without an amount there is no canonical head; Validate
			// reports the missing field.
			if err == nil {
				t.Fatal("Canonical accepted a head without totalAmount")
			}
			return
		}
		if err != nil {
			t.Fatalf("Canonical: %v", err)
		}
		d2, err := ReadDocument(u.PayExInfoStr("c", "s"))
		if err != nil {
			t.Fatalf("canonical document does not read: %v", err)
		}
		u2, err := d2.Canonical()
		if err != nil {
			t.Fatalf("Canonical of canonical: %v", err)
		}
		if !bytes.Equal(u2.SignSource(), u.SignSource()) {
			t.Fatalf("canonical form not stable:\n got %q\nwant %q", u2.SignSource(), u.SignSource())
		}
	})
}

// FuzzParseUploadAck checks that customs' answer parser never panics, that
// its errors are short *ParseError values, and that an answer it accepts
// has a code, is Accepted exactly for 10000, and reads back the same once
// written again as customs writes it.
func FuzzParseUploadAck(f *testing.F) {
	for _, s := range []string{
		`{"code":"10000","message":"上传成功","total":0,"serviceTime":1553047681000}`,
		`{"code":"20000","message":"上传失败","total":0,"serviceTime":"1553047681000"}`,
		`{"code":20000,"message":"certNo : certNo不为空;"}`,
		`{"code":"20000","message":"入库失败"}`,
		`{"code":"20004","message":"企业实时数据获取验签证书未在服务系统注册"}`,
		`{"code":null}`, `[]`, `<html>502 Bad Gateway</html>`, ``, `{"code":{"x":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseUploadAck(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if len(err.Error()) > 100 {
				t.Fatalf("error message longer than 100 bytes: %q", err)
			}
			return
		}
		if a.Code == "" {
			t.Fatal("answer without a code accepted")
		}
		if a.Accepted() != (a.Code == CodeSuccess) {
			t.Fatalf("Accepted() %v for code %q", a.Accepted(), a.Code)
		}
		again, err := json.Marshal(map[string]any{"code": a.Code, "message": a.Message, "total": a.Total, "serviceTime": a.ServiceTime})
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseUploadAck(again)
		if err != nil || back != a {
			t.Fatalf("round trip of %+v: %+v %v", a, back, err)
		}
	})
}
