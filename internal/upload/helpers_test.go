package upload

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/signature"
)

// epoch is when the tests' customs requests arrive.
var epoch = time.UnixMilli(1_700_000_000_000)

// fakeClock is a clock that moves only when told to or when slept on.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// signer is a test key with its certificate.
type signer struct {
	key     crypto.Signer
	cert    *smx509.Certificate
	certPEM []byte
	certNo  string
}

// newSigner makes an SM2 key and a self-signed certificate for it.
func newSigner(tb testing.TB, serial int64) signer {
	tb.Helper()
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "ceb179 test operator card"},
		NotBefore:    epoch.Add(-time.Hour),
		NotAfter:     epoch.Add(365 * 24 * time.Hour),
	}
	der, err := smx509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := signature.ParseCertificatePEM(certPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return signer{key: key, cert: cert, certPEM: certPEM, certNo: signature.CertNo(cert)}
}

// fixture is an upload handler over emulated tables and a local customs.
type fixture struct {
	store   *dynamo.Store
	customs *customssim.Server
	clock   *fakeClock
	signer  signer
	handler *Handler
}

const ebpCode = "EBP0000001"

// awkwardHead holds every character a careless form encoder breaks.
const awkwardHead = `{"guid":"9D55BA71-55DE-41F3-B7C1-3F8B1F3D2A11","initalRequest":"https://pay.example/gw?a=1&b=2+3&sign=ab%2B/cd==","initalResponse":"ok=1&msg=成功","ebpCode":"EBP0000001","payCode":"PAY0000001","payTransactionId":"T1","totalAmount":88.08,"currency":"142","verDept":"3","payType":"1","tradingTime":"20190304013138","note":"100% 中文 & <b> \"q\" \\ ✓"}`

const awkwardLists = `[{"orderNo":"ORD-1","goodsInfo":[{"gname":"商品 A+B","itemLink":"https://shop.example/item?id=1&sku=2;https://shop.example/item?id=3&q=%E4"}],"recpAccount":"6222 0000","recpCode":"","recpName":"收款 公司"}]`

type fixtureOption func(*fixtureConfig)

type fixtureConfig struct {
	tls     bool
	trustCA bool
	timeout time.Duration
	policy  func(*Policy)
}

// newFixture provisions fresh tables, registers one certificate for
// ebpCode, starts customs and builds the handler with a fake clock.
func newFixture(tb testing.TB, opts ...fixtureOption) *fixture {
	tb.Helper()
	cfg := fixtureConfig{timeout: 300 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	env := awstest.New(tb)
	store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
	f := &fixture{store: store, clock: &fakeClock{t: epoch}, signer: newSigner(tb, 0x01691f7f)}
	if cfg.tls {
		f.customs = customssim.ServeTLS(tb)
	} else {
		f.customs = customssim.Serve(tb)
	}
	copts := []customsapi.Option{customsapi.WithTimeout(cfg.timeout)}
	if cfg.trustCA {
		copts = append(copts, customsapi.WithCAPEM(f.customs.CAPEM()))
	}
	client, err := customsapi.New(f.customs.UploadURL(), copts...)
	if err != nil {
		tb.Fatal(err)
	}
	f.registerCert(tb, ebpCode, f.signer)
	p := DefaultPolicy()
	if cfg.policy != nil {
		cfg.policy(&p)
	}
	f.handler = New(store, NewCertCache(store, time.Minute), client,
		WithPolicy(p),
		WithClock(f.clock.Now, f.clock.Sleep),
		WithJitter(func(d time.Duration) time.Duration { return d }))
	return f
}

func (f *fixture) registerCert(tb testing.TB, ebp string, s signer) {
	tb.Helper()
	err := f.store.PutCertificate(context.Background(), ceb179.Certificate{
		EbpCode: ebp, CertNo: s.certNo, PEM: s.certPEM, NotAfter: s.cert.NotAfter, RegisteredAt: epoch,
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// assemble records a request in state ASSEMBLED, received at epoch, and
// its pending upload, as ingest and assemble would.
func (f *fixture) assemble(tb testing.TB, id string) ceb179.Pending {
	tb.Helper()
	ctx := context.Background()
	_, _, err := f.store.CreateRequest(ctx, ceb179.Request{
		SessionID: id, OrderNo: "ORD-1", ServiceTime: epoch.UnixMilli() - 50, ReceivedAt: epoch,
		Deadline: epoch.Add(ceb179.Window), State: ceb179.StateAssembled,
	})
	if err != nil {
		tb.Fatal(err)
	}
	u := customs.Unsigned{SessionID: id, Head: []byte(awkwardHead), Lists: []byte(awkwardLists), ServiceTime: "1700000001000"}
	p := ceb179.Pending{SessionID: id, EbpCode: ebpCode, GUID: "9D55BA71-55DE-41F3-B7C1-3F8B1F3D2A11",
		Head: u.Head, Lists: u.Lists, ServiceTime: u.ServiceTime, Digest: u.Digest(),
		Deadline: epoch.Add(ceb179.Window), CreatedAt: epoch.Add(time.Second)}
	if _, _, err := f.store.CreatePending(ctx, p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// sign fetches the sign source through the handler, as the bridge does,
// and signs it with s.
func (f *fixture) sign(tb testing.TB, id string, s signer) ceb179.Invocation {
	tb.Helper()
	src, err := f.handler.Source(context.Background(), id)
	if err != nil {
		tb.Fatalf("Source(%s): %v", id, err)
	}
	sv, err := signature.Sign(s.key, []byte(src.SignSource))
	if err != nil {
		tb.Fatal(err)
	}
	return ceb179.Invocation{Op: ceb179.OpUpload, SessionID: id, Digest: src.Digest, CertNo: s.certNo, SignValue: sv}
}

// upload invokes the upload op with a generous real deadline.
func (f *fixture) upload(tb testing.TB, job ceb179.Invocation) ceb179.UploadAnswer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := f.handler.Upload(ctx, job)
	if err != nil {
		tb.Fatalf("Upload(%s): %v", job.SessionID, err)
	}
	return a
}

func (f *fixture) request(tb testing.TB, id string) ceb179.Request {
	tb.Helper()
	r, err := f.store.GetRequest(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func (f *fixture) attempts(tb testing.TB, id string) []ceb179.Attempt {
	tb.Helper()
	a, err := f.store.ListAttempts(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// outcomes lists the outcomes of attempts.
func outcomes(atts []ceb179.Attempt) string {
	var b strings.Builder
	for i, a := range atts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(a.Outcome))
	}
	return b.String()
}
