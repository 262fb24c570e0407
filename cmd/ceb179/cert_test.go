package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/signature"
)

func TestCert(t *testing.T) {
	env := awstest.New(t)
	env.Setenv(t)
	cert, err := signature.ParseCertificatePEM(readFile(t, sm2CertFile))
	if err != nil {
		t.Fatal(err)
	}
	certNo := signature.CertNo(cert)
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "ok register prints the certNo", args: []string{"cert", "register", "--ebp-code", "EBP1", sm2CertFile}, code: exitOK, out: certNo + "\n"},
		{name: "ok register a second certificate", args: []string{"cert", "register", "--ebp-code", "EBP1", rsaCertFile}, code: exitOK},
		{name: "ok list", args: []string{"cert", "list", "--ebp-code", "EBP1"}, code: exitOK, out: certNo},
		{name: "fail without ebp-code", args: []string{"cert", "register", sm2CertFile}, code: exitUsage},
		{name: "fail not a certificate", args: []string{"cert", "register", "--ebp-code", "EBP1", vectorFile}, code: exitUsage},
		{name: "fail unknown action", args: []string{"cert", "remove", "--ebp-code", "EBP1"}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
				t.Fatalf("ceb179 %v = %d %q %q; want %d with %q", tt.args, r.code, r.stdout, r.stderr, tt.code, tt.out)
			}
			if r.code != exitOK {
				oneLineError(t, r.stderr)
			}
		})
	}
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Payments: env.Table("PaymentsTable")}, 0)
	got, err := store.GetCertificate(context.Background(), "EBP1", certNo)
	if err != nil || !got.NotAfter.Equal(cert.NotAfter) {
		t.Fatalf("registered certificate = %+v, %v", got, err)
	}
	if _, err := signature.ParseCertificatePEM(got.PEM); err != nil {
		t.Errorf("stored PEM does not parse: %v", err)
	}
}
