package upload

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/signature"
)

// BenchmarkPrepare measures the CPU work of one upload job without any
// I/O: checking the digest of the stored bytes, verifying the SM2
// signature against the (cached) certificate, building payExInfoStr and
// URL-encoding the form body.
func BenchmarkPrepare(b *testing.B) {
	s := newSigner(b, 0x01691f7f)
	p := ceb179.Pending{SessionID: "sid-bench", EbpCode: ebpCode, Head: []byte(awkwardHead), Lists: []byte(awkwardLists), ServiceTime: "1700000001000"}
	u := customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
	p.Digest = u.Digest()
	sv, err := signature.Sign(s.key, u.SignSource())
	if err != nil {
		b.Fatal(err)
	}
	job := ceb179.Invocation{Op: ceb179.OpUpload, SessionID: p.SessionID, Digest: p.Digest, CertNo: s.certNo, SignValue: sv}
	h := New(nil, staticCerts{s}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		doc, err := h.prepare(ctx, job, p)
		if err != nil {
			b.Fatal(err)
		}
		_ = bodyDigest(doc)
	}
}

// staticCerts serves one certificate, as a warm CertCache does.
type staticCerts struct{ s signer }

func (c staticCerts) Certificate(_ context.Context, _, certNo string) (*smx509.Certificate, error) {
	if certNo != c.s.certNo {
		return nil, ErrUnknownCertificate
	}
	return c.s.cert, nil
}

// BenchmarkUploadLoopback runs whole upload jobs against the emulated
// tables and a local customs that answers at once. Besides the work of
// BenchmarkPrepare it includes the five table round trips of a job (get
// request, get pending, claim, put attempt, finish) and the post, all over
// loopback; the certificate comes from the warm cache.
func BenchmarkUploadLoopback(b *testing.B) {
	f := newFixture(b)
	f.clock.Set(epoch)
	jobs := make([]ceb179.Invocation, 0, 64)
	n := 0
	next := func() ceb179.Invocation {
		if len(jobs) == 0 {
			b.StopTimer()
			for range 64 {
				id := fmt.Sprintf("sid-bench-%d", n)
				n++
				f.assemble(b, id)
				jobs = append(jobs, f.sign(b, id, f.signer))
			}
			b.StartTimer()
		}
		j := jobs[0]
		jobs = jobs[1:]
		return j
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		a, err := f.handler.Upload(ctx, next())
		if err != nil || a.State != ceb179.StateAccepted {
			b.Fatalf("Upload = %+v, %v", a, err)
		}
	}
}
