package customs

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
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

// TestVectorSignatureVerifies proves that SignSource rebuilds exactly the
// bytes customs' sample was signed over: the SM2 signature in the vector
// verifies against them with the certificate of the signing card, and does
// not verify against the variants that implementations get wrong.
func TestVectorSignatureVerifies(t *testing.T) {
	r, err := ReadPayExInfoStr(readVector(t))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "vectors", "sm2-accepted-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("no PEM block in certificate file")
	}
	cert, err := smx509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("certificate key is %T, want SM2", cert.PublicKey)
	}
	if got := hex.EncodeToString(cert.SerialNumber.Bytes()); got != r.CertNo {
		t.Errorf("certificate serial %s does not match certNo %s", got, r.CertNo)
	}
	sig, err := base64.StdEncoding.DecodeString(r.SignValue)
	if err != nil || len(sig) != 64 {
		t.Fatalf("signValue is not 64 bytes of base64 (%d bytes, %v)", len(sig), err)
	}
	rr, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	uid := []byte("1234567812345678")
	verify := func(msg []byte) bool { return sm2.VerifyWithSM2(pub, uid, msg, rr, ss) }

	tests := []struct {
		name string
		msg  []byte
		want bool
	}{
		{"ok sign source", r.SignSource(), true},
		{"fail serviceTime unquoted", bytes.Replace(r.SignSource(), []byte(`"serviceTime":"1601282210417"`), []byte(`"serviceTime":1601282210417`), 1), false},
		{"fail JSON not quoted", bytes.Replace(bytes.Replace(r.SignSource(), []byte(`"payExchangeInfoHead":"{`), []byte(`"payExchangeInfoHead":{`), 1), []byte(`}"||"payExchangeInfoLists"`), []byte(`}||"payExchangeInfoLists"`), 1), false},
		{"fail singular key", bytes.Replace(r.SignSource(), []byte(KeyLists), []byte("payExchangeInfoList"), 1), false},
		{"fail amount re-serialised", bytes.Replace(r.SignSource(), []byte(`"totalAmount":5.0`), []byte(`"totalAmount":5`), 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verify(tt.msg); got != tt.want {
				t.Errorf("verify = %v, want %v", got, tt.want)
			}
		})
	}
}
