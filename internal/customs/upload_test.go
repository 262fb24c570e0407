package customs

import (
	"bytes"
	"testing"
)

func TestUploadFormRoundTrip(t *testing.T) {
	in := readVector(t)
	body := EncodeUploadForm(in)
	if !bytes.HasPrefix(body, []byte("payExInfoStr=%7B%22sessionID%22")) {
		t.Errorf("body does not start with the encoded field: %.40s", body)
	}
	for _, raw := range []string{"+", "&", "=", "\""} {
		if bytes.Contains(body[len("payExInfoStr="):], []byte(raw)) {
			t.Errorf("body holds an unencoded %q", raw)
		}
	}
	r, err := ParseUploadForm(UploadContentType, body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadPayExInfoStr(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.SignSource(), want.SignSource()) || r.SignValue != want.SignValue {
		t.Errorf("form round trip changed the document")
	}
}

func TestParseUploadFormErrors(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantMsg     string
	}{
		{"fail JSON content type", "application/json", "payExInfoStr=%7B%7D", "payExInfoStr: content type is not a URL-encoded form"},
		{"fail bad escape", "", "payExInfoStr=%zz", "payExInfoStr: not a URL-encoded form"},
		{"fail no field", UploadContentType, "other=1", "payExInfoStr: no payExInfoStr form field"},
		{"fail field twice", UploadContentType, "payExInfoStr=1&payExInfoStr=2", "payExInfoStr: form field payExInfoStr given more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUploadForm(tt.contentType, []byte(tt.body))
			if err == nil || err.Error() != tt.wantMsg {
				t.Errorf("got %v, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseUploadAck(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    UploadAck
		wantErr string
	}{
		{name: "ok success", in: `{"code":"10000","message":"上传成功","total":0,"serviceTime":1553047681000}`,
			want: UploadAck{Code: "10000", Message: "上传成功", ServiceTime: 1553047681000}},
		{name: "ok failure with validation message", in: `{"code":"20000","message":"certNo : certNo不为空;","total":"0","serviceTime":"1553047681000"}`,
			want: UploadAck{Code: "20000", Message: "certNo : certNo不为空;", ServiceTime: 1553047681000}},
		{name: "ok numeric code and unknown keys", in: ` {"code":10000,"extra":{},"total":3} `, want: UploadAck{Code: "10000", Total: 3}},
		{name: "fail HTML error page", in: `<html><body>502 Bad Gateway</body></html>`, wantErr: "uploadAck: not a JSON object"},
		{name: "fail no code", in: `{"message":"x"}`, wantErr: "uploadAck: missing code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUploadAck([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got %+v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Accepted() != (tt.want.Code == CodeSuccess) {
				t.Errorf("Accepted = %v", got.Accepted())
			}
		})
	}
}
