package customs

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

const (
	formCT    = "application/x-www-form-urlencoded"
	sampleReq = `{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218","serviceTime":1533271903898}`
)

var sampleOpenReq = OpenReq{OrderNo: "ord201800002", SessionID: "fe2374-8fnejf97-32839218", ServiceTime: 1533271903898}

func form(v string) string {
	return "openReq=" + url.QueryEscape(v)
}

// openReqCases are the bodies customs and the web stacks in front of a
// platform are known to send, and bodies that must be refused. They also
// seed FuzzParseOpenReq.
var openReqCases = []struct {
	name        string
	contentType string
	body        string
	want        OpenReq
	wantKind    error  // nil for ok cases
	wantMsg     string // exact error message for fail cases
}{
	{name: "ok form as customs sends it", contentType: formCT, body: form(sampleReq), want: sampleOpenReq},
	{name: "ok form charset utf-8", contentType: formCT + "; charset=UTF-8", body: form(sampleReq), want: sampleOpenReq},
	{name: "ok form charset gbk", contentType: formCT + ";charset=GBK", body: form(sampleReq), want: sampleOpenReq},
	{name: "ok form upper-case content type", contentType: "Application/X-WWW-Form-URLEncoded; Charset=utf-8", body: form(sampleReq), want: sampleOpenReq},
	{name: "ok form without content type", body: form(sampleReq), want: sampleOpenReq},
	{name: "ok form with broken content type", contentType: "application/x-www-form-urlencoded;;;=", body: form(sampleReq), want: sampleOpenReq},
	{name: "ok form not URL-encoded", contentType: formCT, body: "openReq=" + sampleReq, want: sampleOpenReq},
	{name: "ok form with other fields", contentType: formCT, body: "a=1&" + form(sampleReq) + "&b=%zz", want: sampleOpenReq},
	{name: "ok form field twice with same value", contentType: formCT, body: form(sampleReq) + "&" + form(sampleReq), want: sampleOpenReq},
	{name: "ok form field name in other case", contentType: formCT, body: "openreq=" + url.QueryEscape(sampleReq), want: sampleOpenReq},
	{name: "ok raw JSON body", contentType: "application/json", body: sampleReq, want: sampleOpenReq},
	{name: "ok raw JSON body labelled as form", contentType: formCT, body: sampleReq, want: sampleOpenReq},
	{name: "ok raw JSON body without content type", body: sampleReq, want: sampleOpenReq},
	{name: "ok surrounding white space", contentType: formCT, body: "\r\n  " + form(" \n"+sampleReq+"\t ") + "\n", want: sampleOpenReq},
	{name: "ok byte order mark", contentType: "application/json", body: "\uFEFF" + sampleReq, want: sampleOpenReq},
	{name: "ok serviceTime as string", contentType: formCT,
		body: form(`{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218","serviceTime":"1533271903898"}`), want: sampleOpenReq},
	{name: "ok serviceTime as string with spaces", contentType: formCT,
		body: form(`{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218","serviceTime":" 1533271903898 "}`), want: sampleOpenReq},
	{name: "ok serviceTime absent", contentType: formCT,
		body: form(`{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218"}`), want: OpenReq{OrderNo: "ord201800002", SessionID: "fe2374-8fnejf97-32839218"}},
	{name: "ok serviceTime null", contentType: formCT,
		body: form(`{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218","serviceTime":null}`), want: OpenReq{OrderNo: "ord201800002", SessionID: "fe2374-8fnejf97-32839218"}},
	{name: "ok HTML-escaped in form", contentType: formCT,
		body: form(`{&quot;orderNo&quot;:&quot;ord201800002&quot;,&quot;sessionID&quot;:&quot;fe2374-8fnejf97-32839218&quot;,&quot;serviceTime&quot;:1533271903898}`), want: sampleOpenReq},
	{name: "ok HTML-escaped with numeric entities", contentType: formCT,
		body: form(`{&#34;orderNo&#34;:&#34;ord201800002&#34;,&#34;sessionID&#34;:&#34;fe2374-8fnejf97-32839218&#34;,&#34;serviceTime&#34;:&#34;1533271903898&#34;}`), want: sampleOpenReq},
	{name: "ok HTML-escaped twice", contentType: formCT,
		body: form(`{&amp;quot;orderNo&amp;quot;:&amp;quot;ord201800002&amp;quot;,&amp;quot;sessionID&amp;quot;:&amp;quot;fe2374-8fnejf97-32839218&amp;quot;,&amp;quot;serviceTime&amp;quot;:1533271903898}`), want: sampleOpenReq},
	{name: "ok HTML-escaped and not URL-encoded", contentType: formCT,
		body: `openReq={&quot;orderNo&quot;:&quot;ord201800002&quot;,&quot;sessionID&quot;:&quot;fe2374-8fnejf97-32839218&quot;,&quot;serviceTime&quot;:1533271903898}`, want: sampleOpenReq},
	{name: "ok HTML-escaped raw body", contentType: "text/plain",
		body: `{&quot;orderNo&quot;:&quot;ord201800002&quot;,&quot;sessionID&quot;:&quot;fe2374-8fnejf97-32839218&quot;,&quot;serviceTime&quot;:1533271903898}`, want: sampleOpenReq},
	{name: "ok backslash-escaped in form", contentType: formCT,
		body: form(`{\"orderNo\":\"ord201800002\",\"sessionID\":\"fe2374-8fnejf97-32839218\",\"serviceTime\":1533271903898}`), want: sampleOpenReq},
	{name: "ok backslash-escaped raw body", contentType: "application/json",
		body: `{\"orderNo\":\"ord201800002\",\"sessionID\":\"fe2374-8fnejf97-32839218\",\"serviceTime\":\"1533271903898\"}`, want: sampleOpenReq},
	{name: "ok JSON wrapped in a JSON string", contentType: formCT,
		body: form(`"{\"orderNo\":\"ord201800002\",\"sessionID\":\"fe2374-8fnejf97-32839218\",\"serviceTime\":1533271903898}"`), want: sampleOpenReq},
	{name: "ok multipart form", contentType: "multipart/form-data; boundary=XyZ",
		body: "--XyZ\r\nContent-Disposition: form-data; name=\"openReq\"\r\n\r\n" + sampleReq + "\r\n--XyZ--\r\n", want: sampleOpenReq},
	{name: "ok key sessionId in other case", contentType: formCT,
		body: form(`{"orderNo":"ord201800002","sessionId":"fe2374-8fnejf97-32839218","serviceTime":1533271903898}`), want: sampleOpenReq},
	{name: "ok unknown keys ignored", contentType: formCT,
		body: form(`{"orderNo":"ord201800002","sessionID":"fe2374-8fnejf97-32839218","serviceTime":1533271903898,"extra":[1,2]}`), want: sampleOpenReq},
	{name: "ok orderNo as number of digits", contentType: formCT,
		body: form(`{"orderNo":202009231454218421271832,"sessionID":"s1","serviceTime":1}`), want: OpenReq{OrderNo: "202009231454218421271832", SessionID: "s1", ServiceTime: 1}},
	{name: "ok values kept untrimmed", contentType: formCT,
		body: form(`{"orderNo":" ord 1 ","sessionID":"订单-会话","serviceTime":0}`), want: OpenReq{OrderNo: " ord 1 ", SessionID: "订单-会话"}},
	{name: "ok limits reached", contentType: formCT,
		body: form(`{"orderNo":"` + strings.Repeat("号", 60) + `","sessionID":"` + strings.Repeat("s", 100) + `"}`), want: OpenReq{OrderNo: strings.Repeat("号", 60), SessionID: strings.Repeat("s", 100)}},

	{name: "fail empty body", contentType: formCT, body: "", wantKind: ErrMissing, wantMsg: "openReq: empty body"},
	{name: "fail white space body", contentType: formCT, body: " \r\n", wantKind: ErrMissing, wantMsg: "openReq: empty body"},
	{name: "fail form without openReq", contentType: formCT, body: "orderNo=1&sessionID=2", wantKind: ErrMissing, wantMsg: "openReq: no openReq form field"},
	{name: "fail form field twice with different values", contentType: formCT, body: form(sampleReq) + "&openReq=x", wantKind: ErrMalformed, wantMsg: "openReq: form field openReq given more than once"},
	{name: "fail not JSON", contentType: formCT, body: "openReq=hello", wantKind: ErrMalformed, wantMsg: "openReq: not JSON"},
	{name: "fail truncated JSON", contentType: "application/json", body: sampleReq[:40], wantKind: ErrMalformed, wantMsg: "openReq: not JSON"},
	{name: "fail JSON array", contentType: "application/json", body: "[" + sampleReq + "]", wantKind: ErrMalformed, wantMsg: "openReq: not a JSON object"},
	{name: "fail missing orderNo", contentType: formCT, body: form(`{"sessionID":"s","serviceTime":1}`), wantKind: ErrMissing, wantMsg: "openReq: missing orderNo"},
	{name: "fail empty orderNo", contentType: formCT, body: form(`{"orderNo":"","sessionID":"s"}`), wantKind: ErrMissing, wantMsg: "openReq: missing orderNo"},
	{name: "fail null orderNo", contentType: formCT, body: form(`{"orderNo":null,"sessionID":"s"}`), wantKind: ErrMissing, wantMsg: "openReq: missing orderNo"},
	{name: "fail missing sessionID", contentType: formCT, body: form(`{"orderNo":"o","serviceTime":1}`), wantKind: ErrMissing, wantMsg: "openReq: missing sessionID"},
	{name: "fail orderNo an object", contentType: formCT, body: form(`{"orderNo":{"a":1},"sessionID":"s"}`), wantKind: ErrInvalid, wantMsg: "openReq: orderNo must be a string"},
	{name: "fail orderNo a fraction", contentType: formCT, body: form(`{"orderNo":1.5,"sessionID":"s"}`), wantKind: ErrInvalid, wantMsg: "openReq: orderNo must be a string"},
	{name: "fail orderNo too long", contentType: formCT, body: form(`{"orderNo":"` + strings.Repeat("9", 61) + `","sessionID":"s"}`), wantKind: ErrInvalid, wantMsg: "openReq: orderNo longer than 60 characters"},
	{name: "fail sessionID too long", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"` + strings.Repeat("s", 101) + `"}`), wantKind: ErrInvalid, wantMsg: "openReq: sessionID longer than 100 characters"},
	{name: "fail sessionID with newline", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"s\n1"}`), wantKind: ErrInvalid, wantMsg: "openReq: sessionID contains control characters"},
	{name: "fail orderNo with NUL", contentType: formCT, body: form(`{"orderNo":"o\u0000","sessionID":"s"}`), wantKind: ErrInvalid, wantMsg: "openReq: orderNo contains control characters"},
	{name: "fail orderNo with C1 control", contentType: formCT, body: form(`{"orderNo":"o\u0085","sessionID":"s"}`), wantKind: ErrInvalid, wantMsg: "openReq: orderNo contains control characters"},
	{name: "fail sessionID with lone surrogate", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"s\ud800"}`), wantKind: ErrInvalid, wantMsg: "openReq: sessionID holds an unpaired surrogate escape"},
	{name: "fail serviceTime not digits", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"s","serviceTime":"yesterday"}`), wantKind: ErrInvalid, wantMsg: "openReq: serviceTime is not a whole number of milliseconds"},
	{name: "fail serviceTime negative", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"s","serviceTime":-1}`), wantKind: ErrInvalid, wantMsg: "openReq: serviceTime is not a whole number of milliseconds"},
	{name: "fail serviceTime fraction", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"s","serviceTime":1.5e12}`), wantKind: ErrInvalid, wantMsg: "openReq: serviceTime is not a whole number of milliseconds"},
	{name: "fail serviceTime too big", contentType: formCT, body: form(`{"orderNo":"o","sessionID":"s","serviceTime":99999999999999999999}`), wantKind: ErrInvalid, wantMsg: "openReq: serviceTime is not a whole number of milliseconds"},
	{name: "fail not UTF-8", contentType: formCT, body: "openReq=%7B%22orderNo%22%3A%22%FF%22%7D", wantKind: ErrMalformed, wantMsg: "openReq: not valid UTF-8"},
	{name: "fail multipart without part", contentType: "multipart/form-data; boundary=XyZ", body: "--XyZ--\r\n", wantKind: ErrMissing, wantMsg: "openReq: no openReq form field"},
	{name: "fail multipart without boundary", contentType: "multipart/form-data", body: sampleReq, wantKind: ErrMalformed, wantMsg: "openReq: multipart form without boundary"},
	{name: "fail too large", contentType: formCT, body: form(sampleReq) + "&pad=" + strings.Repeat("x", MaxOpenReqBody), wantKind: ErrTooLarge, wantMsg: "openReq: body larger than 65536 bytes"},
}

func TestParseOpenReq(t *testing.T) {
	for _, tt := range openReqCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOpenReq(tt.contentType, []byte(tt.body))
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("ParseOpenReq: %v", err)
				}
				if got != tt.want {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseOpenReq succeeded with %+v, want error %q", got, tt.wantMsg)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("error %q is not %v", err, tt.wantKind)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", err, tt.wantMsg)
			}
			if len(err.Error()) > 80 {
				t.Errorf("message longer than 80 bytes: %q", err)
			}
		})
	}
}

func TestOpenReqFormRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  OpenReq
	}{
		{"ok sample", sampleOpenReq},
		{"ok characters that need encoding", OpenReq{OrderNo: `a&b+c"d\e`, SessionID: "会话 ID=1;2", ServiceTime: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOpenReq(OpenReqContentType, tt.req.Form())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.req {
				t.Errorf("got %+v, want %+v", got, tt.req)
			}
		})
	}
	if got := string(sampleOpenReq.JSON()); got != sampleReq {
		t.Errorf("JSON() = %s, want %s", got, sampleReq)
	}
}
