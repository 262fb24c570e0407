package ceb179

import (
	"encoding/json"
	"testing"
)

func TestAmountJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string // JSON value
		want    Amount
		wantErr string
	}{
		{name: "ok integer", in: `88`, want: "88"},
		{name: "ok keeps trailing zero", in: `5.0`, want: "5.0"},
		{name: "ok keeps digits a float would lose", in: `88.08`, want: "88.08"},
		{name: "ok keeps long decimals", in: `12345678901234.12345`, want: "12345678901234.12345"},
		{name: "ok exponent kept as text", in: `1e2`, want: "1e2"},
		{name: "ok null leaves it unchanged", in: `null`, want: "7"},
		{name: "fail string", in: `"88.08"`, wantErr: "totalAmount: must be a JSON number, not a string"},
		{name: "fail bool", in: `true`, wantErr: "totalAmount: not a JSON number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h struct {
				A Amount `json:"a"`
			}
			h.A = "7"
			err := json.Unmarshal([]byte(`{"a":`+tt.in+`}`), &h)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got %v, want error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.A != tt.want {
				t.Errorf("got %q, want %q", h.A, tt.want)
			}
			out, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"a":` + string(tt.want) + `}`; string(out) != want {
				t.Errorf("Marshal = %s, want %s", out, want)
			}
		})
	}
}

func TestAmountMarshalRejectsNonNumbers(t *testing.T) {
	for _, a := range []Amount{"", "1.", ".5", "01", "1,5", "NaN", " 1", "1 ", `1}`} {
		if b, err := json.Marshal(a); err == nil {
			t.Errorf("Marshal(%q) = %s, want error", a, b)
		}
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"ok 88.08", "88.08", ""},
		{"ok 5.0", "5.0", ""},
		{"ok 0.5", "0.5", ""},
		{"ok max", "99999999999999.99999", ""},
		{"fail empty", "", "totalAmount: required"},
		{"fail zero", "0", "totalAmount: must be greater than 0"},
		{"fail zero decimals", "0.00000", "totalAmount: must be greater than 0"},
		{"fail negative", "-5.0", "totalAmount: must be greater than 0"},
		{"fail negative zero", "-0", "totalAmount: must be greater than 0"},
		{"fail exponent", "8.808E1", "totalAmount: must be plain decimal text, without an exponent"},
		{"fail six decimals", "0.000001", "totalAmount: more than 5 digits after the decimal point"},
		{"fail fifteen digits", "123456789012345", "totalAmount: more than 14 digits before the decimal point"},
		{"fail plus sign", "+5", "totalAmount: not a decimal number"},
		{"fail leading zero", "05", "totalAmount: not a decimal number"},
		{"fail trailing point", "5.", "totalAmount: not a decimal number"},
		{"fail leading point", ".5", "totalAmount: not a decimal number"},
		{"fail spaces", " 5", "totalAmount: not a decimal number"},
		{"fail comma", "5,00", "totalAmount: not a decimal number"},
		{"fail broken exponent", "1e", "totalAmount: not a decimal number"},
		{"fail broken negative", "-x", "totalAmount: not a decimal number"},
		{"fail full-width digits", "５", "totalAmount: not a decimal number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAmount(tt.in)
			if tt.wantErr == "" {
				if err != nil || a.String() != tt.in {
					t.Errorf("got %q, %v; want %q", a, err, tt.in)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("got %q, %v; want error %q", a, err, tt.wantErr)
			}
		})
	}
}
