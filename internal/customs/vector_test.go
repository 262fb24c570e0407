package customs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// readVector returns the accepted payExInfoStr copied from
// /work/shared/vectors.
func readVector(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors", "sm2-accepted-payExInfoStr.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestReadPayExInfoStrVector(t *testing.T) {
	in := readVector(t)
	r, err := ReadPayExInfoStr(in)
	if err != nil {
		t.Fatalf("ReadPayExInfoStr: %v", err)
	}
	if !bytes.Contains(r.Head, []byte(`"totalAmount":5.0,`)) {
		t.Errorf("head bytes lost totalAmount 5.0")
	}
	if got := r.Decoded.Head.TotalAmount; got != "5.0" {
		t.Errorf("decoded totalAmount = %q, want 5.0", got)
	}
	if !bytes.Contains(in, []byte(`"payExchangeInfoHead":`+string(r.Head)+`,"payExchangeInfoLists":`)) {
		t.Errorf("head bytes are not a substring of the input at the head position")
	}
	if !bytes.Contains(in, []byte(`"payExchangeInfoLists":`+string(r.Lists)+`,"serviceTime":`)) {
		t.Errorf("lists bytes are not a substring of the input at the lists position")
	}
	want := `"sessionID":"IHWESX-WEASLEY-20230712210643-X7E4PL"||"payExchangeInfoHead":"` + string(r.Head) +
		`"||"payExchangeInfoLists":"` + string(r.Lists) + `"||"serviceTime":"1601282210417"`
	if got := string(r.SignSource()); got != want {
		t.Errorf("sign source differs:\n got %s\nwant %s", got, want)
	}
	if r.CertNo != "03000000000cde6f" {
		t.Errorf("certNo = %q", r.CertNo)
	}
	if err := r.Decoded.Validate(); err != nil {
		t.Errorf("vector fails validation: %v", err)
	}
	out := r.PayExInfoStr(r.CertNo, r.SignValue)
	if !bytes.Equal(out, bytes.TrimSpace(in)) {
		t.Errorf("PayExInfoStr does not reproduce the vector:\n got %s\nwant %s", out, in)
	}
}

func TestCanonicalVector(t *testing.T) {
	in := readVector(t)
	r, err := ReadPayExInfoStr(in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDocument(in)
	if err != nil {
		t.Fatalf("ReadDocument: %v", err)
	}
	u, err := d.Canonical()
	if err != nil {
		t.Fatalf("Canonical: %v", err)
	}
	if !bytes.Equal(u.SignSource(), r.SignSource()) {
		t.Errorf("canonical sign source differs from the received one:\n got %s\nwant %s", u.SignSource(), r.SignSource())
	}
}
