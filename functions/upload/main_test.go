package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/signature"
)

// TestEntryPoint builds this function, runs it as Lambda runs a bootstrap
// (with the template's environment and a local customs as
// CUSTOMS_UPLOAD_URL) and drives it through the Lambda Invoke API the way
// hsmbridge does: op "source", sign, op "upload".
func TestEntryPoint(t *testing.T) {
	env := awstest.New(t)
	fake := customssim.Serve(t)
	fn := lambdatest.StartBinary(t, env, "UploadFunction", lambdatest.WithEnv(map[string]string{
		"CUSTOMS_UPLOAD_URL": fake.UploadURL(),
	}))
	ctx := context.Background()
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)

	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(0x01691f7f), Subject: pkix.Name{CommonName: "test card"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := smx509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := signature.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	certNo := signature.CertNo(cert)
	if err := store.PutCertificate(ctx, ceb179.Certificate{EbpCode: "EBP1", CertNo: certNo, PEM: certPEM, RegisteredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	const id = "fe2374-8fnejf97-32839218"
	if _, _, err := store.CreateRequest(ctx, ceb179.Request{SessionID: id, OrderNo: "ORD1", ReceivedAt: now,
		Deadline: now.Add(ceb179.Window), State: ceb179.StateAssembled}); err != nil {
		t.Fatal(err)
	}
	u := customs.Unsigned{SessionID: id, Head: []byte(`{"guid":"G","ebpCode":"EBP1","note":"a&b+c=d% 中文"}`),
		Lists: []byte(`[{"orderNo":"ORD1"}]`), ServiceTime: "1700000001000"}
	if _, _, err := store.CreatePending(ctx, ceb179.Pending{SessionID: id, EbpCode: "EBP1", Head: u.Head, Lists: u.Lists,
		ServiceTime: u.ServiceTime, Digest: u.Digest(), Deadline: now.Add(ceb179.Window), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}

	var src ceb179.SourceAnswer
	fn.InvokeJSON(t, ceb179.Invocation{Op: ceb179.OpSource, SessionID: id}, &src)
	if src.SignSource != string(u.SignSource()) || src.Digest != u.Digest() || src.EbpCode != "EBP1" {
		t.Fatalf("source answer = %+v", src)
	}
	sv, err := signature.Sign(key, []byte(src.SignSource))
	if err != nil {
		t.Fatal(err)
	}
	job := ceb179.Invocation{Op: ceb179.OpUpload, SessionID: id, Digest: src.Digest, CertNo: certNo, SignValue: sv}
	var ans ceb179.UploadAnswer
	fn.InvokeJSON(t, job, &ans)
	if ans.State != ceb179.StateAccepted || fake.Posts() != 1 {
		t.Fatalf("upload answer = %+v after %d posts\nlogs:\n%s", ans, fake.Posts(), fn.Logs())
	}
	if got := fake.Uploads()[0].PayExInfoStr; got != string(u.PayExInfoStr(certNo, sv)) {
		t.Errorf("customs received %q", got)
	}
	// A redelivery is answered from the table.
	fn.InvokeJSON(t, job, &ans)
	if ans.State != ceb179.StateAccepted || fake.Posts() != 1 {
		t.Fatalf("second upload answer = %+v after %d posts", ans, fake.Posts())
	}

	tests := []struct {
		name    string
		payload string
		want    string
	}{
		{"fail unknown op", `{"op":"sign","sessionID":"x"}`, "bad request"},
		{"fail unknown session", `{"op":"source","sessionID":"nope"}`, "unknown session"},
		{"fail not JSON", `[1,2]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := fn.Invoke(ctx, []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			e, err := res.DecodeError()
			if err != nil || !strings.Contains(e.ErrorMessage, tt.want) {
				t.Fatalf("error = %+v, %v; want one containing %q", e, err, tt.want)
			}
		})
	}
	if logs := fn.Logs(); strings.Contains(logs, "中文") || strings.Contains(logs, sv) {
		t.Errorf("function logs carry payload or signature:\n%s", logs)
	}
}
