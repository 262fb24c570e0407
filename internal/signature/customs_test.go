package signature_test

import (
	"os"
	"testing"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/signature"
)

// TestVerifyThroughCustoms verifies the accepted vector with the sign
// source that internal/customs rebuilds from the received bytes.
func TestVerifyThroughCustoms(t *testing.T) {
	b, err := os.ReadFile("testdata/sm2-accepted-payExInfoStr.json")
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile("testdata/sm2-accepted-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := signature.ParseCertificatePEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	r, err := customs.ReadPayExInfoStr(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := signature.CertNo(cert); got != r.CertNo {
		t.Errorf("CertNo = %q, payload has %q", got, r.CertNo)
	}
	if err := signature.Verify(cert, r.SignSource(), r.SignValue); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
